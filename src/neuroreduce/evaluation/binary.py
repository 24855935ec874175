"""Scores of predicted probabilities of a binary target (e.g. a spike in each time bin).

``y_true`` holds 0/1 per ``[trial, time, channel]``; ``y_prob`` holds the predicted probability
(any score that grows with the belief in a 1) of the same shape. Every channel gets its own ROC
over all its unmasked trial/time bins. ROC curves and AUC come from scikit-learn
(``roc_curve``, ``roc_auc_score``); the true-positive rate at a given false-positive rate is
read off the ROC by linear interpolation between its corners, as in Beniaguev et al. (2021,
Neuron 109:2727), who report the TP rate at a 0.25% FP rate. Thresholds are chosen by Youden's
J = TPR - FPR (Youden 1950) or by the geometric mean sqrt(TPR * (1 - FPR)) (Kubat & Matwin 1997).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from neuroreduce.errors import ConfigError, unknown_name_error

#: Threshold rules: a score of each ROC point (``fpr``, ``tpr``), the best point maximises it.
THRESHOLD_RULES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "youden": lambda fpr, tpr: tpr - fpr,
    "gmean": lambda fpr, tpr: np.sqrt(tpr * (1.0 - fpr)),
}


def _channels(
    y_true: np.ndarray, y_prob: np.ndarray, mask: np.ndarray | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield the unmasked (labels, scores) of each channel as flat arrays."""
    t = np.asarray(y_true)
    p = np.asarray(y_prob, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 3:
        raise ConfigError(
            "binary metrics need y_true and y_prob of equal shape [trial, time, channel]; "
            f"got {t.shape} and {p.shape}"
        )
    m = np.ones(t.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != t.shape:
        raise ConfigError(f"mask shape {m.shape} differs from y_true shape {t.shape}")
    for c in range(t.shape[2]):
        tc, pc = t[..., c][m[..., c]], p[..., c][m[..., c]]
        if not np.isin(tc, (0, 1)).all():
            bad = np.unique(tc[~np.isin(tc, (0, 1))])[:5]
            raise ConfigError(f"binary y_true must hold only 0 and 1; channel {c} has {bad}")
        if not np.isfinite(pc).all():
            raise ConfigError(f"y_prob of channel {c} has NaN/inf at unmasked bins")
        yield tc.astype(np.int64), pc


def _both_classes(t: np.ndarray) -> bool:
    return t.size > 0 and 0 < int(t.sum()) < t.size


def roc(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC of one channel: ``(fpr, tpr, thresholds)``, every corner kept.

    Args:
        y_true: 0/1 labels, shape ``[n]``.
        y_score: scores, shape ``[n]``.

    Returns:
        Three arrays of equal length, ordered by decreasing threshold (so ``fpr`` and ``tpr``
        never decrease); the first threshold is ``inf`` (nothing predicted positive).
    """
    fpr, tpr, thr = roc_curve(y_true, y_score, drop_intermediate=False)
    return fpr, tpr, thr


def tpr_at(fpr: np.ndarray, tpr: np.ndarray, fp_rate: float) -> float:
    """True-positive rate of a ROC at false-positive rate ``fp_rate``, linearly interpolated.

    Where the ROC rises vertically at exactly ``fp_rate``, the top of the rise is returned.
    """
    i = int(np.searchsorted(fpr, fp_rate, side="right")) - 1
    if i < 0:
        return float("nan")
    if fpr[i] == fp_rate or i == len(fpr) - 1:
        return float(tpr[i])
    w = (fp_rate - fpr[i]) / (fpr[i + 1] - fpr[i])
    return float(tpr[i] + w * (tpr[i + 1] - tpr[i]))


def roc_auc(
    y_true: np.ndarray, y_prob: np.ndarray, *, mask: np.ndarray | None = None
) -> np.ndarray:
    """Area under the ROC per channel, ``[channel]`` (NaN where a channel has one class only).

    Args:
        y_true: 0/1, ``[trial, time, channel]``.
        y_prob: Predicted probabilities, same shape.
        mask: bool, same shape; False bins are ignored.
    """
    return np.array(
        [
            float(roc_auc_score(t, p)) if _both_classes(t) else np.nan
            for t, p in _channels(y_true, y_prob, mask)
        ]
    )


def tpr_at_fp_rates(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    *,
    fp_rates: Sequence[float] = (0.01,),
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """TP rate at each FP rate (interpolated on the ROC), ``[fp_rate, channel]``.

    Channels with one class only get NaN.
    """
    cols = []
    for t, p in _channels(y_true, y_prob, mask):
        if not _both_classes(t):
            cols.append([np.nan] * len(fp_rates))
            continue
        fpr, tpr, _ = roc(t, p)
        cols.append([tpr_at(fpr, tpr, float(f)) for f in fp_rates])
    return np.array(cols, dtype=np.float64).reshape(-1, len(fp_rates)).T


def _best(
    y_true: np.ndarray, y_prob: np.ndarray, rule: str, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    try:
        score_fn = THRESHOLD_RULES[rule]
    except KeyError:
        raise unknown_name_error("threshold rule", rule, list(THRESHOLD_RULES)) from None
    thresholds, scores = [], []
    for t, p in _channels(y_true, y_prob, mask):
        if not _both_classes(t):
            thresholds.append(np.nan)
            scores.append(np.nan)
            continue
        fpr, tpr, thr = roc(t, p)
        s = score_fn(fpr, tpr)
        k = int(np.argmax(s))
        thresholds.append(float(thr[k]))
        scores.append(float(s[k]))
    return np.array(thresholds), np.array(scores)


def choose_threshold(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    *,
    rule: str = "youden",
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Threshold per channel (``prob >= threshold`` means 1) that maximises ``rule``.

    Args:
        y_true: 0/1, ``[trial, time, channel]``.
        y_prob: Predicted probabilities, same shape.
        rule: A key of :data:`THRESHOLD_RULES` (``"youden"`` or ``"gmean"``).
        mask: bool, same shape; False bins are ignored.

    Returns:
        ``[channel]`` thresholds (probability units); NaN for one-class channels.
    """
    return _best(y_true, y_prob, rule, mask)[0]


def best_rule_score(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    *,
    rule: str = "youden",
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """The maximum over the ROC of ``rule`` (Youden's J or the G-mean), ``[channel]``."""
    return _best(y_true, y_prob, rule, mask)[1]
