: High-voltage-activated Ca current of the Hay et al. (2011) layer-5b pyramidal cell.
: Written for neuroreduce from the published equations of
:   Hay E, Hill S, Schuermann F, Markram H, Segev I (2011) PLoS Comput Biol 7:e1002107
:   (supplement; ModelDB 139653);
: kinetics from Reuveni I, Friedman A, Amitai Y, Gutnick MJ (1993) Stepwise repolarization from
:   Ca2+ plateaus in neocortical pyramidal cells: evidence for nonhomogeneous distribution of
:   HVA Ca2+ channels in dendrites. J Neurosci 13:4609-4621.
: g = gbar * m^2 * h

NEURON {
    SUFFIX Ca_HVA
    USEION ca READ eca WRITE ica
    RANGE gCa_HVAbar, gCa_HVA
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gCa_HVAbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    eca (mV)
    ica (mA/cm2)
    gCa_HVA (S/cm2)
    mInf mTau (ms) hInf hTau (ms)
}

STATE { m h }

BREAKPOINT {
    SOLVE states METHOD cnexp
    gCa_HVA = gCa_HVAbar * m * m * h
    ica = gCa_HVA * (v - eca)
}

DERIVATIVE states {
    rates(v)
    m' = (mInf - m) / mTau
    h' = (hInf - h) / hTau
}

INITIAL {
    rates(v)
    m = mInf
    h = hInf
}

FUNCTION efun(x, k) {
    : x / (1 - exp(-x / k)), continuous at x = 0
    if (fabs(x / k) < 1e-6) {
        efun = k * (1 + x / k / 2)
    } else {
        efun = x / (1 - exp(-x / k))
    }
}

PROCEDURE rates(v (mV)) {
    LOCAL mA, mB, hA, hB
    UNITSOFF
    : alpha_m = 0.055 * (-27 - v) / (exp((-27 - v) / 3.8) - 1)
    mA = 0.055 * efun(v + 27, 3.8)
    mB = 0.94 * exp((-75 - v) / 17)
    mInf = mA / (mA + mB)
    mTau = 1 / (mA + mB)
    hA = 0.000457 * exp((-13 - v) / 50)
    hB = 0.0065 / (exp((-v - 15) / 28) + 1)
    hInf = hA / (hA + hB)
    hTau = 1 / (hA + hB)
    UNITSON
}
