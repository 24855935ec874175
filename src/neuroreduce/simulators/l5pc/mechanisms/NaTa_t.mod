: Transient Na current of the Hay et al. (2011) layer-5b pyramidal cell model.
: Written for neuroreduce from the published equations of
:   Hay E, Hill S, Schuermann F, Markram H, Segev I (2011) Models of neocortical layer 5b
:   pyramidal cells capturing a wide range of dendritic and perisomatic active properties.
:   PLoS Comput Biol 7:e1002107 (kinetics as tabulated in its supplement / ModelDB 139653);
: kinetics from Colbert CM, Pan E (2002) Ion channel properties underlying axonal action
:   potential initiation in pyramidal neurons. Nat Neurosci 5:533-538 (recorded at 21 C,
:   Q10 = 2.3 to 34 C).
: g = gbar * m^3 * h

NEURON {
    SUFFIX NaTa_t
    USEION na READ ena WRITE ina
    RANGE gNaTa_tbar, gNaTa_t
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gNaTa_tbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ena (mV)
    ina (mA/cm2)
    gNaTa_t (S/cm2)
    mInf mTau (ms) hInf hTau (ms)
    celsius (degC)
}

STATE { m h }

BREAKPOINT {
    SOLVE states METHOD cnexp
    gNaTa_t = gNaTa_tbar * m * m * m * h
    ina = gNaTa_t * (v - ena)
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
    : x / (1 - exp(-x / k)), continuous at x = 0 (limit k)
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
    mA = 0.182 * efun(v + 38, 6)
    mB = 0.124 * efun(-v - 38, 6)
    mTau = (1 / (mA + mB)) / qt
    mInf = mA / (mA + mB)
    hA = 0.015 * efun(-v - 66, 6)
    hB = 0.015 * efun(v + 66, 6)
    hTau = (1 / (hA + hB)) / qt
    hInf = hA / (hA + hB)
    UNITSON
}
