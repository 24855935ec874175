: Kv3.1 (fast delayed-rectifier K) current of the Hay et al. (2011) layer-5b pyramidal cell.
: Written for neuroreduce from the published equations of
:   Hay E, Hill S, Schuermann F, Markram H, Segev I (2011) PLoS Comput Biol 7:e1002107
:   (supplement; ModelDB 139653);
: kinetics from Rettig J, Wunder F, Stocker M, et al. (1992) Characterization of a Shaw-related
:   potassium channel family in rat brain. EMBO J 11:2473-2486.
: g = gbar * m

NEURON {
    SUFFIX SKv3_1
    USEION k READ ek WRITE ik
    RANGE gSKv3_1bar, gSKv3_1
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gSKv3_1bar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    gSKv3_1 (S/cm2)
    mInf mTau (ms)
}

STATE { m }

BREAKPOINT {
    SOLVE states METHOD cnexp
    gSKv3_1 = gSKv3_1bar * m
    ik = gSKv3_1 * (v - ek)
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
    UNITSOFF
    mInf = 1 / (1 + exp((v - 18.7) / -9.7))
    mTau = 0.2 * 20.0 / (1 + exp((v + 46.56) / -44.14))
    UNITSON
}
