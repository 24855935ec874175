"""``neuroreduce simulate l5pc``: the L5PC as a registered typed-task generator.

Importing this module registers the generator ``l5pc`` (no NEURON is loaded until it runs).
The command-line options map onto :class:`~neuroreduce.simulators.l5pc.generate.L5PCSpec`:
``--trials`` (alias of ``--stimuli``) trials, ``--duration-ms`` the trial length (default
6000 ms), ``--dt-out`` the sampling interval (default 1 ms), ``--dt`` NEURON's step, ``--seed``
the input spike trains and split, ``--workers`` / ``--backend`` / ``--address`` where the trials
run, and ``--option NAME=VALUE`` any other spec field (``morphology=path``, ``nmda=false``,
``max_channels=8``, ``cvode=true``, ``keep_raw=true``, ``record_dendrites=true``,
``exc_rate_range_hz=[5,9]``, ``inh_rate_range_hz=[4,12]``, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from neuroreduce.errors import ConfigError
from neuroreduce.simulators.toy_tasks import TaskGenerator, register_task_generator

_INPUT_FIELDS = ("exc_rate_range_hz", "inh_rate_range_hz", "time_constant_ms",
                 "spatial_sigma_channels", "modulation_depth")


def make_spec(*, seed: int = 0, dt_out_ms: float = 1.0, duration_ms: float | None = None,
              dt_ms: float | None = None, options: Mapping[str, Any] | None = None) -> Any:
    """The :class:`L5PCSpec` of the command-line settings and ``options`` (spec fields, and
    the input fields of :class:`~neuroreduce.simulators.l5pc.inputs.InputConfig`).

    Raises:
        ConfigError: on an unknown option (the message lists the known ones).
    """
    from neuroreduce.simulators.l5pc.generate import L5PCSpec
    from neuroreduce.simulators.l5pc.inputs import InputConfig

    options = dict(options or {})
    known = [f.name for f in dataclasses.fields(L5PCSpec) if f.name != "inputs"]
    unknown = [k for k in options if k not in known and k not in _INPUT_FIELDS]
    if unknown:
        raise ConfigError(f"unknown l5pc option {unknown[0]!r}; known options: "
                          f"{', '.join(known + list(_INPUT_FIELDS))}")
    inputs = InputConfig(**{k: (tuple(v) if isinstance(v, list) else v)
                            for k, v in options.items() if k in _INPUT_FIELDS})
    fields = {k: v for k, v in options.items() if k not in _INPUT_FIELDS}
    fields.setdefault("seed", seed)
    fields.setdefault("dt_out_ms", dt_out_ms)
    if duration_ms is not None:
        fields.setdefault("duration_ms", duration_ms)
    if dt_ms is not None:
        fields.setdefault("dt_ms", dt_ms)
    return L5PCSpec(inputs=inputs, **fields)


def _make(n_trials: int, *, seed: int = 0, dt_ms: float = 1.0, duration_ms: float | None = None,
          settings: Any = None, out: Any = None, progress: bool = False,
          options: Mapping[str, Any] | None = None) -> Any:
    """The task generator's ``make``: ``dt_ms`` is the output sampling interval; the
    integration step, workers and backend come from ``settings`` (SimulationSettings)."""
    from neuroreduce.execution import Backend
    from neuroreduce.simulators.l5pc.generate import generate

    spec = make_spec(seed=seed, dt_out_ms=dt_ms, duration_ms=duration_ms,
                     dt_ms=getattr(settings, "dt_ms", None), options=options)
    backend = None
    if settings is not None:
        backend = Backend(kind=settings.backend, workers=settings.workers,
                          address=settings.address)
    return generate(spec, n_trials, out=out, backend=backend, progress=progress)


def _fingerprint(*, seed: int = 0, dt_out_ms: float = 1.0, duration_ms: float | None = None,
                 dt_ms: float | None = None, options: Mapping[str, Any] | None = None) -> str:
    """The trial cache's hash of the spec (morphology and NMODL files by SHA-256, NEURON's
    version): an experiment dataset of l5pc is rebuilt when any of them changes."""
    from neuroreduce.simulators.l5pc.generate import spec_hash

    return spec_hash(make_spec(seed=seed, dt_out_ms=dt_out_ms, duration_ms=duration_ms,
                               dt_ms=dt_ms, options=options))


register_task_generator(TaskGenerator(
    "l5pc", "Hay 2011 L5 pyramidal cell in NEURON under 639+639 Poisson synaptic channels: "
    "events in, soma voltage + spikes out (slow: seconds per simulated second)", _make,
    default_dt_ms=1.0, run_options=True, check_options=make_spec, fingerprint=_fingerprint))
