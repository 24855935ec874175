: Low-voltage-activated (T-type) Ca current of the Hay et al. (2011) layer-5b pyramidal cell.
: Written for neuroreduce from the published equations of
:   Hay E, Hill S, Schuermann F, Markram H, Segev I (2011) PLoS Comput Biol 7:e1002107
:   (supplement; ModelDB 139653);
: kinetics from Avery RB, Johnston D (1996) Multiple channel types contribute to the low-voltage-
:   activated calcium current in hippocampal CA3 pyramidal neurons. J Neurosci 16:5567-5582,
:   and Randall AD, Tsien RW (1997) Contrasting biophysical and pharmacological properties of
:   T-type and R-type calcium channels. Neuropharmacology 36:879-893
:   (shifted by -10 mV; Q10 2.3 from 21 C).
: g = gbar * m^2 * h

NEURON {
    SUFFIX Ca_LVAst
    USEION ca READ eca WRITE ica
    RANGE gCa_LVAstbar, gCa_LVAst
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gCa_LVAstbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    eca (mV)
    ica (mA/cm2)
    gCa_LVAst (S/cm2)
    mInf mTau (ms) hInf hTau (ms)
    celsius (degC)
}

STATE { m h }

BREAKPOINT {
    SOLVE states METHOD cnexp
    gCa_LVAst = gCa_LVAstbar * m * m * h
    ica = gCa_LVAst * (v - eca)
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
    mInf = 1 / (1 + exp((u + 30) / -6))
    mTau = (5 + 20 / (1 + exp((u + 25) / 5))) / qt
    hInf = 1 / (1 + exp((u + 80) / 6.4))
    hTau = (20 + 50 / (1 + exp((u + 40) / 7))) / qt
    UNITSON
}
