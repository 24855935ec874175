: Slow inactivating (persistent) K current of the Hay et al. (2011) layer-5b pyramidal cell.
: Written for neuroreduce from the published equations of
:   Hay E, Hill S, Schuermann F, Markram H, Segev I (2011) PLoS Comput Biol 7:e1002107
:   (supplement; ModelDB 139653);
: kinetics from Korngreen A, Sakmann B (2000) Voltage-gated K+ channels in layer 5 neocortical
:   pyramidal neurones from young rats: subtypes and gradients. J Physiol 525:621-639
:   (shifted by -10 mV for the liquid junction potential; Q10 2.3 from 21 C).
: g = gbar * m^2 * h

NEURON {
    SUFFIX K_Pst
    USEION k READ ek WRITE ik
    RANGE gK_Pstbar, gK_Pst
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gK_Pstbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    gK_Pst (S/cm2)
    mInf mTau (ms) hInf hTau (ms)
    celsius (degC)
}

STATE { m h }

BREAKPOINT {
    SOLVE states METHOD cnexp
    gK_Pst = gK_Pstbar * m * m * h
    ik = gK_Pst * (v - ek)
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

PROCEDURE rates(v (mV)) {
    LOCAL qt, u
    qt = 2.3 ^ ((celsius - 21) / 10)
    UNITSOFF
    u = v + 10
    mInf = 1 / (1 + exp(-(u + 1) / 12))
    if (u < -50) {
        mTau = (1.25 + 175.03 * exp(u * 0.026)) / qt
    } else {
        mTau = (1.25 + 13 * exp(-u * 0.026)) / qt
    }
    hInf = 1 / (1 + exp(-(u + 54) / -11))
    hTau = (360 + (1010 + 24 * (u + 55)) * exp(-((u + 75) / 48) ^ 2)) / qt
    UNITSON
}
