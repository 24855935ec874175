: Muscarinic (M-type) K current of the Hay et al. (2011) layer-5b pyramidal cell.
: Written for neuroreduce from the published equations of
:   Hay E, Hill S, Schuermann F, Markram H, Segev I (2011) PLoS Comput Biol 7:e1002107
:   (supplement; ModelDB 139653);
: kinetics from Adams PR, Brown DA, Constanti A (1982) M-currents and other potassium currents in
:   bullfrog sympathetic neurones. J Physiol 330:537-572 (Q10 2.3 from 21 C).
: g = gbar * m

NEURON {
    SUFFIX Im
    USEION k READ ek WRITE ik
    RANGE gImbar, gIm
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gImbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    gIm (S/cm2)
    mInf mTau (ms)
    celsius (degC)
}

STATE { m }

BREAKPOINT {
    SOLVE states METHOD cnexp
    gIm = gImbar * m
    ik = gIm * (v - ek)
}

DERIVATIVE states {
    rates(v)
    m' = (mInf - m) / mTau
}

INITIAL {
    rates(v)
    m = mInf
}

PROCEDURE rates(v (mV)) {
    LOCAL qt, mA, mB
    qt = 2.3 ^ ((celsius - 21) / 10)
    UNITSOFF
    mA = 3.3e-3 * exp(2.5 * 0.04 * (v + 35))
    mB = 3.3e-3 * exp(-2.5 * 0.04 * (v + 35))
    mInf = mA / (mA + mB)
    mTau = (1 / (mA + mB)) / qt
    UNITSON
}
