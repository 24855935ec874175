: Inhibitory GABA-A synapse: a conductance that is the difference of two exponentials
: (rise 0.2 ms, decay 8 ms), reversal -80 mV, driven by presynaptic events (NetCon weight =
: number of quanta); time course as in the L5PC simulations of Beniaguev D, Segev I, London M
: (2021) Neuron 109:2727-2739. Written for neuroreduce.
: i = g (v - e)

NEURON {
    POINT_PROCESS GabaA
    NONSPECIFIC_CURRENT i
    RANGE tau_r, tau_d, gmax, e, g
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    tau_r = 0.2 (ms)
    tau_d = 8.0 (ms)
    gmax = 0.001 (uS)
    e = -80 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
    f
}

STATE {
    r (uS)
    d (uS)
}

INITIAL {
    LOCAL tp
    r = 0
    d = 0
    tp = (tau_r * tau_d) / (tau_d - tau_r) * log(tau_d / tau_r)
    f = 1 / (-exp(-tp / tau_r) + exp(-tp / tau_d))
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = d - r
    i = g * (v - e)
}

DERIVATIVE states {
    r' = -r / tau_r
    d' = -d / tau_d
}

NET_RECEIVE(weight) {
    r = r + weight * gmax * f
    d = d + weight * gmax * f
}
