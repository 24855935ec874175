"""Named simulation scenarios: which neurons are driven, which are recorded, for how long.

A scenario is pure declaration: adding one is a matter of calling :func:`register_scenario`
with names. Registered here: ``fcm`` (the paper's 4 inputs -> 4 outputs), ``fcm16`` (the same
inputs, 16 recorded forward-locomotion neurons), ``nictation`` (6 IL2 sensory neurons -> 12
head/neck motor neurons), ``fcm_nictation`` (both: 10 inputs, 28 outputs; used with mixed
stimulus groups, see :mod:`neuroreduce.experiments.datasets`) and ``toy``. The choice of neurons
and amplitudes is documented, with references and measurements, in ``docs/scenarios.md``.
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
        behaviours: For a scenario that mixes behaviours, each behaviour's name and its outputs
            (a subset of ``outputs``), so analyses can score the behaviours apart.
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
    behaviours: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        if not self.inputs or not self.outputs:
            raise ConfigError(f"scenario {self.name!r} needs at least one input and one output")
        for behaviour, outputs in self.behaviours:
            unknown = sorted(set(outputs) - set(self.outputs))
            if unknown:
                raise ConfigError(f"scenario {self.name!r}: behaviour {behaviour!r} names outputs "
                                  f"{unknown} that are not among its outputs")
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


#: FCM inputs: posterior touch receptors and forward command interneurons.
FCM_INPUTS: tuple[str, ...] = ("PLML", "PLMR", "AVBL", "AVBR")
#: 16 forward-locomotion outputs: the paper's four first, then the anterior B-type (forward)
#: motor neurons, DD1, the touch-circuit interneurons and AVAL (docs/scenarios.md).
FCM16_OUTPUTS: tuple[str, ...] = (
    "DB1", "LUAL", "PVR", "VB1",
    "DB2", "DB3", "DB4", "VB2", "VB3", "VB4", "DD1",
    "LUAR", "PVCL", "PVCR", "DVA", "AVAL",
)
#: The six IL2 sensory neurons, required for nictation (Lee et al. 2012).
NICTATION_INPUTS: tuple[str, ...] = ("IL2DL", "IL2DR", "IL2VL", "IL2VR", "IL2L", "IL2R")
#: 12 head/neck motor neurons driven by IL2 (docs/scenarios.md).
NICTATION_OUTPUTS: tuple[str, ...] = (
    "URADL", "URADR", "URAVL", "URAVR",
    "RMED", "RMEV", "RMEL", "RMER",
    "IL1VL", "IL1VR", "RMGL", "RMGR",
)

FCM = register_scenario(
    Scenario(
        name="fcm",
        description=(
            "Forward crawling motion: current into PLML, PLMR (touch sensory) and AVBL, AVBR "
            "(forward command interneurons); voltages of DB1, LUAL, PVR, VB1; 500 ms."
        ),
        inputs=FCM_INPUTS,
        outputs=("DB1", "LUAL", "PVR", "VB1"),
        duration_ms=500.0,
        amplitude_range_na=(0.0, 0.1),  # graded responses with c302 C0: docs/c302_parameter_sets.md
        reference="Barbulescu et al. 2023, Sci. Rep. 13:11542 (Experimental setting, Data)",
    )
)

FCM16 = register_scenario(
    Scenario(
        name="fcm16",
        description=(
            "Forward crawling motion with 16 recorded neurons: current into PLML, PLMR, AVBL, "
            "AVBR; voltages of B-type motor neurons, DD1 and touch-circuit interneurons; 500 ms."
        ),
        inputs=FCM_INPUTS,
        outputs=FCM16_OUTPUTS,
        duration_ms=500.0,
        amplitude_range_na=(0.0, 0.1),  # as fcm: graded C0 responses
        reference=(
            "Barbulescu et al. 2023 (Experiment 5); Kim, Leahy & Shlizerman 2019; Chalfie et "
            "al. 1985; docs/scenarios.md"
        ),
    )
)

NICTATION = register_scenario(
    Scenario(
        name="nictation",
        description=(
            "Nictation: current into the six IL2 sensory neurons; voltages of 12 head/neck "
            "motor neurons (URA, RME, IL1V, RMG); 500 ms."
        ),
        inputs=NICTATION_INPUTS,
        outputs=NICTATION_OUTPUTS,
        duration_ms=500.0,
        amplitude_range_na=(0.0, 0.05),  # URA saturate from ~5 pA, IL1V/RMG graded: docs
        reference=(
            "Barbulescu et al. 2023 (Experiment 5); Lee et al. 2012, Nat. Neurosci. 15:107; "
            "docs/scenarios.md"
        ),
    )
)

FCM_NICTATION = register_scenario(
    Scenario(
        name="fcm_nictation",
        description=(
            "Forward crawling and nictation in one network: 10 inputs (PLM, AVB, IL2), 28 "
            "outputs (fcm16 + nictation); each trial drives one behaviour's inputs (mix)."
        ),
        inputs=FCM_INPUTS + NICTATION_INPUTS,
        outputs=FCM16_OUTPUTS + NICTATION_OUTPUTS,
        duration_ms=500.0,
        amplitude_range_na=(0.0, 0.1),  # FCM's; the nictation group uses (0, 0.05) in its mix
        reference="Barbulescu et al. 2023 (Experiment 5, Table 5); docs/scenarios.md",
        behaviours=(("fcm", FCM16_OUTPUTS), ("nictation", NICTATION_OUTPUTS)),
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
