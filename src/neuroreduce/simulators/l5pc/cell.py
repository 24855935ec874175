"""The layer-5b pyramidal cell of Hay et al. (2011) in NEURON: morphology, biophysics, synapses.

Hay E, Hill S, Schuermann F, Markram H, Segev I (2011) Models of neocortical layer 5b pyramidal
cells capturing a wide range of dendritic and perisomatic active properties. PLoS Comput Biol
7:e1002107. The cell is built from a Neurolucida reconstruction (``cell1.asc``, read with
NEURON's ``Import3d_Neurolucida3``) as in that paper:

* the reconstructed axon is replaced by a stub of two 30 um sections whose diameter is the mean
  diameter of the first 60 um of the reconstructed axon (passive, as in the paper's final model);
* passive membrane everywhere (Ra 100 ohm cm, e_pas -90 mV; cm 1 uF/cm2 in soma and axon,
  2 uF/cm2 in the dendrites to account for spines);
* channel densities of the published model (:data:`DENSITIES`, S/cm2); the apical Ih density
  grows exponentially with the normalised distance ``x`` from the soma,
  ``g = 0.0002 (-0.8696 + 2.087 exp(3.6161 x))`` S/cm2, and the apical Ca channels are 100-fold
  (LVA) / 10-fold (HVA) denser in the "hot zone" 685-885 um from the soma;
* 34 C; E_Na 50 mV, E_K -85 mV.

Segments follow Hay's rule (``nseg = 1 + 2 int(L / 40 um)``: 639 dendritic segments on
``cell1.asc``, NeuronIO's 639 channels) or the d_lambda rule (``nseg`` odd, each at most
``d_lambda`` of the AC length constant at ``freq_hz``: 1,015 at 0.1, 100 Hz).
Every dendritic segment (basal and apical, in section order) carries
one excitatory synapse (AMPA + NMDA with the Mg block, ``AmpaNmda``) and one inhibitory synapse
(GABA-A, ``GabaA``): channel ``exc_<k>`` / ``inh_<k>`` drives segment ``k``. A trial delivers
spike events to them through NetCons (weight 1 per event) and records the soma voltage.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.errors import ConfigError, DatasetError, SimulationError

#: Published channel densities of the Hay et al. (2011) model (S/cm2) and Ca dynamics
#: (decay ms, gamma) per section type. Apical Ih and Ca_LVAst/Ca_HVA are set by distance.
DENSITIES: dict[str, dict[str, float]] = {
    "somatic": {
        "g_pas": 3.38e-5, "gIhbar_Ih": 2.0e-4, "gCa_LVAstbar_Ca_LVAst": 3.43e-3,
        "gCa_HVAbar_Ca_HVA": 9.92e-4, "gSKv3_1bar_SKv3_1": 0.693, "gSK_E2bar_SK_E2": 0.0441,
        "gK_Tstbar_K_Tst": 0.0812, "gK_Pstbar_K_Pst": 2.23e-3, "gNap_Et2bar_Nap_Et2": 1.72e-3,
        "gNaTa_tbar_NaTa_t": 2.04, "decay_CaDynamics_E2": 460.0, "gamma_CaDynamics_E2": 5.01e-4,
    },
    "apical": {
        "g_pas": 5.89e-5, "gSK_E2bar_SK_E2": 1.2e-3, "gSKv3_1bar_SKv3_1": 2.61e-4,
        "gNaTa_tbar_NaTa_t": 0.0213, "gImbar_Im": 6.75e-5, "decay_CaDynamics_E2": 122.0,
        "gamma_CaDynamics_E2": 5.09e-4,
    },
    "basal": {"g_pas": 4.67e-5, "gIhbar_Ih": 2.0e-4},
    "axonal": {"g_pas": 3.25e-5},
}
_INSERT = {
    "somatic": ("pas", "Ca_LVAst", "Ca_HVA", "SKv3_1", "SK_E2", "K_Tst", "K_Pst", "Nap_Et2",
                "NaTa_t", "CaDynamics_E2", "Ih"),
    "apical": ("pas", "Ih", "SK_E2", "Ca_LVAst", "Ca_HVA", "SKv3_1", "NaTa_t", "Im",
               "CaDynamics_E2"),
    "basal": ("pas", "Ih"),
    "axonal": ("pas",),
}
#: Apical Ih: g(x) = IH_SOMA * (IH_A + IH_B * exp(IH_K * x)), x = distance / max distance.
IH_SOMA, IH_A, IH_B, IH_K = 2.0e-4, -0.8696, 2.087, 3.6161
#: Apical Ca channels (S/cm2) inside the hot zone, and the fraction outside it.
CA_LVA_HOT, CA_LVA_OUT = 0.0187, 0.01
CA_HVA_HOT, CA_HVA_OUT = 5.55e-4, 0.1

#: Ways of choosing the number of segments per section (see :class:`CellConfig`).
NSEG_RULES = ("hay", "d_lambda")

_TEMPLATE = """
begintemplate NeuroreduceL5PC
public soma, dend, apic, axon, all, somatic, basal, apical, axonal
objref all, somatic, basal, apical, axonal
create soma[1], dend[1], apic[1], axon[1]
proc init() {
    all = new SectionList()
    somatic = new SectionList()
    basal = new SectionList()
    apical = new SectionList()
    axonal = new SectionList()
}
endtemplate NeuroreduceL5PC
"""


@dataclass(frozen=True)
class CellConfig:
    """How the L5PC is built.

    Attributes:
        morphology: Path of the Neurolucida ``.asc`` reconstruction (e.g. Hay's ``cell1.asc``).
        nseg_rule: ``"hay"`` (``nseg = 1 + 2 int(L / 40 um)``, Hay's template; gives the 639
            dendritic segments = channels of NeuronIO on ``cell1.asc``) or ``"d_lambda"``
            (``d_lambda`` rule: 1,015 dendritic segments at 0.1 and 100 Hz).
        d_lambda: Largest segment length as a fraction of the AC length constant at ``freq_hz``
            (``nseg_rule = "d_lambda"``).
        freq_hz: Frequency of the d_lambda rule (Hz).
        hot_zone_um: ``(start, end)`` distance from the soma (um) of the apical Ca hot zone;
            ``None`` removes it (Ca channels everywhere at the outside density: a control).
        nmda: Whether excitatory synapses have the NMDA conductance (False: AMPA only).
        exc_gmax_ns: Peak AMPA conductance of one excitatory event (nS); NMDA has the same.
        inh_gmax_ns: Peak GABA-A conductance of one inhibitory event (nS).
        celsius: Temperature (C).
        max_channels: Keep only the first this many dendritic segments as synaptic channels
            (``None``: all); for tiny test runs.
    """

    morphology: str
    nseg_rule: str = "hay"
    d_lambda: float = 0.1
    freq_hz: float = 100.0
    hot_zone_um: tuple[float, float] | None = (685.0, 885.0)
    nmda: bool = True
    exc_gmax_ns: float = 0.4
    inh_gmax_ns: float = 1.0
    celsius: float = 34.0
    max_channels: int | None = None

    def __post_init__(self) -> None:
        for name in ("d_lambda", "freq_hz", "exc_gmax_ns", "inh_gmax_ns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    math.isfinite(value) and value >= 0):
                raise ConfigError(f"cell {name} must be a finite number >= 0, got {value!r}")
        if self.nseg_rule not in NSEG_RULES:
            raise ConfigError(f"unknown nseg_rule {self.nseg_rule!r}; use one of "
                              f"{', '.join(NSEG_RULES)}")
        if self.d_lambda <= 0 or self.freq_hz <= 0:
            raise ConfigError("cell d_lambda and freq_hz must be > 0")
        if self.hot_zone_um is not None:
            lo, hi = (float(x) for x in self.hot_zone_um)
            if not 0 <= lo < hi:
                raise ConfigError(f"hot_zone_um must be (start, end) um with 0 <= start < end, "
                                  f"got {self.hot_zone_um!r}")
            object.__setattr__(self, "hot_zone_um", (lo, hi))
        if self.max_channels is not None and (
                not isinstance(self.max_channels, int) or self.max_channels < 1):
            raise ConfigError(f"max_channels must be an integer >= 1, got {self.max_channels!r}")


class L5PCCell:
    """The built cell (one per :class:`CellConfig`; several may live in one process).

    Attributes:
        config: How it was built.
        soma: The soma section.
        sections: Section type (``somatic``, ``axonal``, ``basal``, ``apical``) -> sections.
        channel_segments: The dendritic segments carrying the synaptic channels, in channel
            order (``[n_channels]`` NEURON segments).
        exc: Excitatory point processes, one per channel.
        inh: Inhibitory point processes, one per channel.
    """

    def __init__(self, config: CellConfig) -> None:
        from neuroreduce.simulators.l5pc.mechanisms import load_mechanisms

        self.config = config
        load_mechanisms()
        from neuron import h

        self.h = h
        h.load_file("stdrun.hoc")
        h.load_file("import3d.hoc")
        if not hasattr(h, "NeuroreduceL5PC"):
            h(_TEMPLATE)
        self.set_globals()
        self._cell = _import_morphology(h, Path(config.morphology))
        self.sections = {
            "somatic": list(self._cell.somatic), "basal": list(self._cell.basal),
            "apical": list(self._cell.apical),
        }
        if not self.sections["somatic"] or not self.sections["apical"] or not (
                self.sections["basal"]):
            found = {k: len(v) for k, v in self.sections.items()}
            raise DatasetError(
                f"morphology {config.morphology} lacks a soma, apical or basal dendrites "
                f"(sections found: {found}); expected a Neurolucida file with CellBody, "
                "Apical and Dendrite trees")
        self.soma = self.sections["somatic"][0]
        self.sections["axonal"] = self._replace_axon()
        self._discretise()
        self._insert_biophysics()
        self.channel_segments = [seg for kind in ("basal", "apical")
                                 for sec in self.sections[kind] for seg in sec]
        if config.max_channels is not None:
            self.channel_segments = self.channel_segments[: config.max_channels]
        self.exc, self.inh = [], []
        for seg in self.channel_segments:
            e = h.AmpaNmda(seg)
            e.gmax_ampa = config.exc_gmax_ns * 1e-3
            e.gmax_nmda = config.exc_gmax_ns * 1e-3 if config.nmda else 0.0
            i = h.GabaA(seg)
            i.gmax = config.inh_gmax_ns * 1e-3
            self.exc.append(e)
            self.inh.append(i)

    def set_globals(self) -> None:
        """Set the process-wide NEURON values this cell depends on: temperature, the initial
        Ca concentrations (NEURON's defaults, cai 5e-5 mM, cao 2 mM; other models — c302 sets
        ``cai0_ca_ion = 0`` — change them for every cell of the process) and first-order
        fixed-step integration. Called before every settle and run."""
        h = self.h
        h.celsius = self.config.celsius
        h.cai0_ca_ion = 5e-5
        h.cao0_ca_ion = 2.0
        h.secondorder = 0

    # ------------------------------------------------------------------ structure
    @property
    def n_channels(self) -> int:
        """Synaptic channels per population (= dendritic segments used)."""
        return len(self.channel_segments)

    @property
    def n_segments(self) -> dict[str, int]:
        """Segments per section type."""
        return {k: sum(s.nseg for s in v) for k, v in self.sections.items()}

    def distance(self, seg: Any) -> float:
        """Path distance (um) from the soma centre to ``seg``."""
        return float(self.h.distance(self.soma(0.5), seg))

    def channel_info(self) -> list[dict[str, Any]]:
        """Per channel: section name, segment position x and distance from the soma (um)."""
        return [{"section": seg.sec.name().split(".")[-1], "x": round(float(seg.x), 6),
                 "distance_um": round(self.distance(seg), 3)} for seg in self.channel_segments]

    def _replace_axon(self) -> list[Any]:
        h = self.h
        axon = list(self._cell.axonal)
        diams, length = [], 0.0
        for sec in axon:  # first 60 um of the reconstructed axon, in section order
            for i in range(int(sec.n3d()) - 1):
                seg_len = math.dist(
                    [sec.x3d(i), sec.y3d(i), sec.z3d(i)],
                    [sec.x3d(i + 1), sec.y3d(i + 1), sec.z3d(i + 1)])
                if length < 60.0:
                    diams.append((sec.diam3d(i) + sec.diam3d(i + 1)) / 2)
                length += seg_len
            if length >= 60.0:
                break
        diam = float(np.mean(diams)) if diams else 1.0
        for sec in axon:
            h.delete_section(sec=sec)
        stub = [h.Section(name=f"axon_stub[{k}]") for k in range(2)]
        for sec in stub:
            sec.L, sec.diam = 30.0, diam
        stub[0].connect(self.soma(0.5), 0)
        stub[1].connect(stub[0](1), 0)
        return stub

    def _discretise(self) -> None:
        h = self.h
        for kind, secs in self.sections.items():
            for sec in secs:
                sec.Ra = 100.0
                sec.cm = 2.0 if kind in ("basal", "apical") else 1.0
        for secs in self.sections.values():
            for sec in secs:
                if self.config.nseg_rule == "hay":
                    sec.nseg = 1 + 2 * int(sec.L / 40.0)
                else:
                    lam = h.lambda_f(self.config.freq_hz, sec=sec)
                    sec.nseg = int((sec.L / (self.config.d_lambda * lam) + 0.9) / 2) * 2 + 1

    def _insert_biophysics(self) -> None:
        h = self.h
        for kind, secs in self.sections.items():
            for sec in secs:
                for mech in _INSERT[kind]:
                    sec.insert(mech)
                sec.e_pas = -90.0
                if kind in ("somatic", "apical"):
                    sec.ena, sec.ek = 50.0, -85.0
                for name, value in DENSITIES[kind].items():
                    setattr(sec, name, value)
        h.distance(0, self.soma(0.5))
        apical = self.sections["apical"]
        max_dist = max(self.distance(sec(1)) for sec in apical)
        hot = self.config.hot_zone_um
        for sec in apical:
            for seg in sec:
                d = self.distance(seg)
                seg.gIhbar_Ih = IH_SOMA * (IH_A + IH_B * math.exp(IH_K * d / max_dist))
                inside = hot is not None and hot[0] < d < hot[1]
                seg.gCa_LVAstbar_Ca_LVAst = CA_LVA_HOT * (1.0 if inside else CA_LVA_OUT)
                seg.gCa_HVAbar_Ca_HVA = CA_HVA_HOT * (1.0 if inside else CA_HVA_OUT)
        self.max_apical_distance_um = max_dist


def _import_morphology(h: Any, path: Path) -> Any:
    """Read a Neurolucida ``.asc`` file into a new cell object (one-line DatasetError)."""
    if not path.is_file():
        raise DatasetError(f"morphology file {path} not found; pass the path of a Neurolucida "
                           ".asc reconstruction (e.g. ../shared/data/l5pc/cell1.asc)")
    _check_neurolucida(path)
    cell = h.NeuroreduceL5PC()
    reader = h.Import3d_Neurolucida3()
    reader.quiet = 1
    try:
        with _quiet():
            reader.input(str(path))
            h.Import3d_GUI(reader, 0).instantiate(cell)
    except RuntimeError as exc:
        raise DatasetError(f"morphology file {path} could not be read as Neurolucida ASCII "
                           f"({str(exc).splitlines()[0] if str(exc) else 'hoc error'})") from None
    # the template's placeholder sections of types the file lacks are not part of the cell
    kept = {sec.name() for sec in cell.all}
    for name in ("soma", "dend", "apic", "axon"):
        for sec in list(getattr(cell, name)):
            if sec.name() not in kept:
                h.delete_section(sec=sec)
    return cell


#: Neurolucida tree markers the cell needs (NEURON's Import3d crashes on files without them).
_REQUIRED_MARKERS = ("(CellBody)", "(Dendrite)", "(Apical)")


def _check_neurolucida(path: Path) -> None:
    """Refuse, before NEURON reads it, a file that is not a Neurolucida reconstruction with a
    soma, basal and apical trees, or whose parentheses do not balance (one-line DatasetError)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DatasetError(f"morphology file {path} cannot be read ({exc.strerror})") from None
    code = "\n".join(line.split(";", 1)[0] for line in text.splitlines())
    missing = [m for m in _REQUIRED_MARKERS if m not in code.replace(" ", "")]
    if missing:
        raise DatasetError(
            f"morphology file {path} has no {', '.join(missing)} section; expected a "
            "Neurolucida ASCII reconstruction with CellBody, Dendrite and Apical trees")
    depth = 0
    for lineno, line in enumerate(code.splitlines(), 1):
        depth += line.count("(") - line.count(")")
        if depth < 0:
            raise DatasetError(f"morphology file {path} line {lineno}: unbalanced ')'")
    if depth != 0:
        raise DatasetError(f"morphology file {path}: {depth} unclosed '(' at the end")


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence NEURON's own prints (hoc writes to the C stdout) during the import."""
    with contextlib.redirect_stdout(io.StringIO()):
        fd = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                yield
        finally:
            os.dup2(fd, 1)
            os.close(fd)


def check_finite(v: np.ndarray, *, trial: int, dt_ms: float) -> None:
    """Raise a one-line SimulationError if a trial's voltage is not finite."""
    if not np.all(np.isfinite(v)):
        raise SimulationError(
            f"trial {trial}: the L5PC simulation became unstable (NaN/inf voltage) at "
            f"dt {dt_ms} ms; use a smaller integration step (e.g. --dt {dt_ms / 4:g})")
