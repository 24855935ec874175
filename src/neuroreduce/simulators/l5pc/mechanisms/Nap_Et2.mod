: Persistent Na current of the Hay et al. (2011) layer-5b pyramidal cell model.
: Written for neuroreduce from the published equations of
:   Hay E, Hill S, Schuermann F, Markram H, Segev I (2011) PLoS Comput Biol 7:e1002107
:   (supplement; ModelDB 139653);
: kinetics from Magistretti J, Alonso A (1999) Biophysical properties and slow voltage-dependent
:   inactivation of a sustained sodium current in entorhinal cortex layer-II principal neurons.
:   J Gen Physiol 114:491-509 (activation time constant as for NaTa_t, scaled by 6; Q10 2.3).
: g = gbar * m^3 * h

NEURON {
    SUFFIX Nap_Et2
    USEION na READ ena WRITE ina
    RANGE gNap_Et2bar, gNap_Et2
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gNap_Et2bar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ena (mV)
    ina (mA/cm2)
    gNap_Et2 (S/cm2)
    mInf mTau (ms) hInf hTau (ms)
    celsius (degC)
}

STATE { m h }

BREAKPOINT {
    SOLVE states METHOD cnexp
    gNap_Et2 = gNap_Et2bar * m * m * m * h
    ina = gNap_Et2 * (v - ena)
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
    LOCAL qt, mA, mB, hA, hB
    qt = 2.3 ^ ((celsius - 21) / 10)
    UNITSOFF
    mInf = 1 / (1 + exp((v + 52.6) / -4.6))
    mA = 0.182 * efun(v + 38, 6)
    mB = 0.124 * efun(-v - 38, 6)
    mTau = 6 * (1 / (mA + mB)) / qt
    hInf = 1 / (1 + exp((v + 48.8) / 10))
    hA = 2.88e-6 * efun(-v - 17, 4.63)
    hB = 6.94e-6 * efun(v + 64.4, 2.63)
    hTau = (1 / (hA + hB)) / qt
    UNITSON
}
