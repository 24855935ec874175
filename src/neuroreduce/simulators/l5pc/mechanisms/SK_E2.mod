: Small-conductance Ca-activated K current (SK) of the Hay et al. (2011) layer-5b pyramidal
: cell. Written for neuroreduce from the published equations of
:   Hay E, Hill S, Schuermann F, Markram H, Segev I (2011) PLoS Comput Biol 7:e1002107
:   (supplement; ModelDB 139653);
: steady state from Koehler M, Hirschberg B, Bond CT, et al. (1996) Small-conductance,
:   calcium-activated potassium channels from mammalian brain. Science 273:1709-1714
:   (Hill coefficient 4.8, half activation 0.43 uM); time constant 1 ms.
: g = gbar * z

NEURON {
    SUFFIX SK_E2
    USEION k READ ek WRITE ik
    USEION ca READ cai
    RANGE gSK_E2bar, gSK_E2
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
    (mM) = (milli/liter)
}

PARAMETER {
    gSK_E2bar = 0.000001 (S/cm2)
    zTau = 1 (ms)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    cai (mM)
    gSK_E2 (S/cm2)
    zInf
}

STATE { z }

BREAKPOINT {
    SOLVE states METHOD cnexp
    gSK_E2 = gSK_E2bar * z
    ik = gSK_E2 * (v - ek)
}

DERIVATIVE states {
    rates(cai)
    z' = (zInf - z) / zTau
}

INITIAL {
    rates(cai)
    z = zInf
}

PROCEDURE rates(ca (mM)) {
    LOCAL c
    c = ca
    if (c < 1e-7) {
        c = c + 1e-7
    }
    UNITSOFF
    zInf = 1 / (1 + (0.00043 / c) ^ 4.8)
    UNITSON
}
