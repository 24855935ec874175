: Excitatory glutamatergic synapse: an AMPA and an NMDA conductance, each a difference of two
: exponentials, driven by the same presynaptic events (NetCon weight = number of quanta).
: The NMDA conductance is blocked by extracellular Mg2+ as measured by
:   Jahr CE, Stevens CF (1990) Voltage dependence of NMDA-activated macroscopic conductances
:   predicted by single-channel kinetics. J Neurosci 10:3178-3182:
:   B(v) = 1 / (1 + exp(-0.062 v) [Mg]o / 3.57 mM).
: Time constants and conductances follow the synapses of the L5PC of Beniaguev D, Segev I,
: London M (2021) Single cortical neurons as deep artificial neural networks. Neuron
: 109:2727-2739 (AMPA 0.3 / 3 ms, NMDA 2 / 70 ms). Written for neuroreduce.
: i = g_ampa (v - e) + g_nmda B(v) (v - e)

NEURON {
    POINT_PROCESS AmpaNmda
    NONSPECIFIC_CURRENT i
    RANGE tau_r_ampa, tau_d_ampa, tau_r_nmda, tau_d_nmda, gmax_ampa, gmax_nmda, e, mg
    RANGE g_ampa, g_nmda, i_nmda
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
    (mM) = (milli/liter)
}

PARAMETER {
    tau_r_ampa = 0.3 (ms)
    tau_d_ampa = 3.0 (ms)
    tau_r_nmda = 2.0 (ms)
    tau_d_nmda = 70.0 (ms)
    gmax_ampa = 0.0004 (uS)
    gmax_nmda = 0.0004 (uS)
    e = 0 (mV)
    mg = 1 (mM)
}

ASSIGNED {
    v (mV)
    i (nA)
    i_nmda (nA)
    g_ampa (uS)
    g_nmda (uS)
    f_ampa
    f_nmda
}

STATE {
    ra (uS)
    da (uS)
    rn (uS)
    dn (uS)
}

INITIAL {
    ra = 0
    da = 0
    rn = 0
    dn = 0
    f_ampa = peak_factor(tau_r_ampa, tau_d_ampa)
    f_nmda = peak_factor(tau_r_nmda, tau_d_nmda)
}

FUNCTION peak_factor(tr (ms), td (ms)) {
    : 1 / peak of exp(-t/td) - exp(-t/tr): one quantum peaks at gmax
    LOCAL tp
    tp = (tr * td) / (td - tr) * log(td / tr)
    peak_factor = 1 / (-exp(-tp / tr) + exp(-tp / td))
}

FUNCTION mgblock(v (mV)) {
    UNITSOFF
    mgblock = 1 / (1 + exp(0.062 * -v) * (mg / 3.57))
    UNITSON
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    g_ampa = da - ra
    g_nmda = dn - rn
    i_nmda = g_nmda * mgblock(v) * (v - e)
    i = g_ampa * (v - e) + i_nmda
}

DERIVATIVE states {
    ra' = -ra / tau_r_ampa
    da' = -da / tau_d_ampa
    rn' = -rn / tau_r_nmda
    dn' = -dn / tau_d_nmda
}

NET_RECEIVE(weight) {
    ra = ra + weight * gmax_ampa * f_ampa
    da = da + weight * gmax_ampa * f_ampa
    rn = rn + weight * gmax_nmda * f_nmda
    dn = dn + weight * gmax_nmda * f_nmda
}
