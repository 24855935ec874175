"""Named simulation scenarios: which neurons are driven, which are recorded, for how long.

A scenario is pure declaration. Adding one of the paper's other scenarios (the 16-output FCM,
nictation, ablations) is a matter of calling :func:`register_scenario` with names.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuroreduce.errors import ConfigError, unknown_name_error


@dataclass(frozen=True)
class Scenario:
    """A behavioural scenario of the C. elegans network (or any simulator with named cells).

    Attributes:
        name: Registry key, e.g. ``"fcm"``.
        description: One sentence for help texts and reports.
        inputs: Neurons receiving injected current (nA), in input-channel order.
        outputs: Neurons whose somatic voltage (mV) is recorded, in output-channel order.
        duration_ms: Simulated time per trial (ms).
        amplitude_range_na: (min, max) peak amplitude of injected currents (nA) used by the
            stimulus generator for this scenario.
        ablated: Neurons whose chemical and electrical connections are removed.
        simulator: Which simulator family runs it: ``"celegans"`` (c302 network in NEURON) or
            ``"toy"`` (closed-form linear system, for tests and tutorials).
        reference: Where the scenario comes from.
    """

    name: str
    description: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    duration_ms: float = 500.0
    amplitude_range_na: tuple[float, float] = (0.0, 0.005)
    ablated: tuple[str, ...] = ()
    simulator: str = "celegans"
    reference: str = ""

    def __post_init__(self) -> None:
        if not self.inputs or not self.outputs:
            raise ConfigError(f"scenario {self.name!r} needs at least one input and one output")
        if self.duration_ms <= 0:
            raise ConfigError(f"scenario {self.name!r}: duration_ms must be > 0")
        lo, hi = self.amplitude_range_na
        if not lo <= hi:
            raise ConfigError(f"scenario {self.name!r}: amplitude_range_na must be (min, max)")


_SCENARIOS: dict[str, Scenario] = {}


def register_scenario(scenario: Scenario) -> Scenario:
    """Add ``scenario`` to the registry (replacing nothing: names are unique)."""
    if scenario.name in _SCENARIOS:
        raise ConfigError(f"scenario {scenario.name!r} is already registered")
    _SCENARIOS[scenario.name] = scenario
    return scenario


def get_scenario(name: str) -> Scenario:
    """Return the registered scenario called ``name`` (error lists the known ones)."""
    try:
        return _SCENARIOS[name]
    except KeyError:
        raise unknown_name_error("scenario", name, list(_SCENARIOS)) from None


def list_scenarios() -> list[str]:
    """Names of all registered scenarios."""
    return sorted(_SCENARIOS)


FCM = register_scenario(
    Scenario(
        name="fcm",
        description=(
            "Forward crawling motion: current into PLML, PLMR (touch sensory) and AVBL, AVBR "
            "(forward command interneurons); voltages of DB1, LUAL, PVR, VB1; 500 ms."
        ),
        inputs=("PLML", "PLMR", "AVBL", "AVBR"),
        outputs=("DB1", "LUAL", "PVR", "VB1"),
        duration_ms=500.0,
        amplitude_range_na=(0.0, 0.1),  # graded responses with c302 C0: docs/c302_parameter_sets.md
        reference="Barbulescu et al. 2023, Sci. Rep. 13:11542 (Experimental setting, Data)",
    )
)

TOY = register_scenario(
    Scenario(
        name="toy",
        description=(
            "Closed-form linear stand-in (4 inputs -> 4 low-pass outputs) for tests and quick "
            "tutorials; no NEURON needed."
        ),
        inputs=("in0", "in1", "in2", "in3"),
        outputs=("out0", "out1", "out2", "out3"),
        duration_ms=100.0,
        amplitude_range_na=(0.0, 1.0),
        simulator="toy",
        reference="neuroreduce.simulators.toy",
    )
)
