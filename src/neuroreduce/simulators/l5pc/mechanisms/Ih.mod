: Hyperpolarisation-activated cation current (HCN) of the Hay et al. (2011) layer-5b pyramidal
: cell. Written for neuroreduce from the published equations of
:   Hay E, Hill S, Schuermann F, Markram H, Segev I (2011) PLoS Comput Biol 7:e1002107
:   (supplement; ModelDB 139653);
: kinetics from Kole MHP, Hallermann S, Stuart GJ (2006) Single Ih channels in pyramidal neuron
:   dendrites: properties, distribution, and impact on action potential output. J Neurosci
:   26:1677-1687. Reversal potential ehcn = -45 mV.
: g = gbar * m

NEURON {
    SUFFIX Ih
    NONSPECIFIC_CURRENT ihcn
    RANGE gIhbar, gIh, ehcn
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gIhbar = 0.00001 (S/cm2)
    ehcn = -45.0 (mV)
}

ASSIGNED {
    v (mV)
    ihcn (mA/cm2)
    gIh (S/cm2)
    mInf mTau (ms)
}

STATE { m }

BREAKPOINT {
    SOLVE states METHOD cnexp
    gIh = gIhbar * m
    ihcn = gIh * (v - ehcn)
}

DERIVATIVE states {
    rates(v)
    m' = (mInf - m) / mTau
}

INITIAL {
    rates(v)
    m = mInf
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
    LOCAL mA, mB
    UNITSOFF
    : alpha = 0.00643 * (v + 154.9) / (exp((v + 154.9) / 11.9) - 1)
    mA = 0.001 * 6.43 * efun(-(v + 154.9), 11.9)
    mB = 0.001 * 193 * exp(v / 33.1)
    mInf = mA / (mA + mB)
    mTau = 1 / (mA + mB)
    UNITSON
}
