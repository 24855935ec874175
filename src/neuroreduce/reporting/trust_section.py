"""The report section on the ensemble as the surrogate: gain of its mean, calibrated spread.

Reads what ``neuroreduce evaluate`` wrote (``results["ensemble"]``, ``results["uncertainty"]``,
see :mod:`neuroreduce.trust.predict`) and draws the reliability diagram.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import SPLIT_NAMES
from neuroreduce.reporting.html import figure, table


def plot_reliability(path: Path, points: list[dict[str, float]], *, title: str) -> None:
    """Observed vs nominal coverage of calibrated intervals (the diagonal is perfect)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nominal = [p["nominal"] for p in points]
    observed = [np.nan if p["observed"] is None else p["observed"] for p in points]
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    ax.plot(nominal, observed, "o-", color="C0", label="test split")
    ax.set_xlabel("nominal coverage (calibrated on valid)")
    ax.set_ylabel("observed coverage on test")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt_number(value: float | None, spec: str, scale: float = 1.0) -> str:
    """``value`` formatted with ``spec`` (times ``scale``), or ``n/a`` when undefined."""
    return "n/a" if value is None else format(scale * value, spec)


def trust_section(results: dict[str, Any], fig_dir: Path, *, units: str,
                  label: str) -> str | None:
    """HTML of the section, or ``None`` when the results have no ensemble block."""
    ensemble = results.get("ensemble")
    if not ensemble or len(results.get("seeds", ())) < 2:
        return None
    num = fmt_number
    rows = [(s, num(v["ensemble_mean_rmse"], ".3e"), num(v["member_rmse_mean"], ".3e"),
             num(v["member_rmse_best"], ".3e"), num(v["gain"], ".0f", 100) + " %")
            for s in SPLIT_NAMES if (v := ensemble.get(s))]
    html = ("<p>The seed ensemble used as one surrogate: the mean of its members' predictions "
            "against the members themselves (pooled RMSE).</p>" + table(
                ["split", f"ensemble mean ({units})", f"average member ({units})",
                 f"best member ({units})", "gain of the mean"], rows))
    left_out = results.get("members_left_out")
    if left_out:
        html += (f"<p>Members {', '.join(map(str, left_out))} diverged and are left out of the "
                 f"ensemble.</p>")
    unc = results.get("uncertainty")
    if unc:
        plot_reliability(fig_dir / "reliability.png", unc["reliability"],
                         title=f"{label}: calibrated member spread")
        html += (
            f"<p>Uncertainty: the members' spread, scaled on the valid split by split-conformal "
            f"calibration (scale per output: {', '.join(num(s, '.3g') for s in unc['scale'])}), "
            f"gives {100 * unc['level']:.0f} % intervals that cover "
            f"<b>{num(unc['test_coverage'], '.1f', 100)} %</b> of the test values; the spread "
            f"ranks test trials by their real error with Spearman rho "
            f"<b>{num(unc['test_spearman_trial_spread_vs_error'], '.2f')}</b>. Test samples "
            f"within a "
            f"trial are correlated, so coverage is measured, not assumed. "
            f"<code>neuroreduce predict</code> returns the mean, the spread and these intervals, "
            f"and warns for inputs outside the training range.</p>"
            + figure("figures/reliability.png",
                     "Reliability diagram: observed coverage on the test split of intervals "
                     "calibrated on the valid split at each nominal level."))
    return html


def experiment_trust_html(trust: dict[str, Any]) -> str:
    """The experiment report's section on held-out families (``analysis/trust.json``)."""
    num = fmt_number
    parts = ["<p>The seed ensemble's mean is the surrogate; its members' spread is the "
             "uncertainty, calibrated on the training data's valid split (split-conformal). "
             "Per held-out family: the ensemble-mean RMSE against its in-distribution (test) "
             "value, the share of trials the input check flags as outside the training inputs, "
             "and the coverage of nominal intervals calibrated on the valid split and, "
             "leave-one-family-out, on the other held-out families.</p>"]
    for key, cell in trust["cells"].items():
        s = cell["summary"]
        level = s.get("level")
        nominal = "nominal" if level is None else f"nominal {100 * level:.0f} %"
        rows = [[name, num(f.get("ensemble_rmse"), ".3g"), num(f.get("ratio"), ".2f"),
                 num(f.get("gain"), ".0f", 100) + " %", num(f.get("flagged_fraction"), ".0f", 100)
                 + " %", num(f.get("coverage_valid_calibrated"), ".0f", 100) + " %",
                 num(f.get("coverage_cross_family"), ".0f", 100) + " %"]
                for name, f in cell["families"].items()]
        parts.append(
            f"<h3>{key} ({cell['label']})</h3><p>In-distribution test: ensemble-mean RMSE "
            f"{num(cell['test_ensemble_rmse'], '.3g')}, coverage of the {nominal} interval "
            f"{num(cell.get('test_coverage'), '.0f', 100)} %. Over all {s['n_trials']} held-out "
            f"trials the spread ranks trials by their real error with Spearman rho "
            f"<b>{num(s.get('spearman_spread_vs_error'), '.2f')}</b> (the input distance alone: "
            f"{num(s.get('spearman_distance_vs_error'), '.2f')}); {nominal} intervals cover "
            f"<b>{num(s.get('coverage_valid_calibrated'), '.0f', 100)} %</b> when calibrated "
            f"in distribution and <b>{num(s.get('coverage_cross_family'), '.0f', 100)} %</b> "
            f"when calibrated on the other held-out families (mean over families).</p>"
            + table(["family", "ensemble RMSE", "/ test", "gain of the mean", "flagged",
                     "coverage (valid cal.)", "coverage (cross-family cal.)"], rows))
    return "".join(parts)
