"""Scores of a categorical target with one label per time step (e.g. a behaviour).

``y_true`` holds labels ``0 .. K-1`` per ``[trial, time]``, or ``ignore_label`` where the label
is unknown; ``y_pred`` holds predicted probabilities ``[trial, time, K]`` (the arg-max is the
predicted label) or predicted labels ``[trial, time]``. Steps with ``ignore_label`` in
``y_true`` or False in ``mask`` are skipped by every score. Balanced accuracy is the mean recall
over the classes that occur (Brodersen et al. 2010, ICPR), as scikit-learn's
``balanced_accuracy_score``.
"""

from __future__ import annotations

import numpy as np

from neuroreduce.errors import ConfigError


def labels(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    n_classes: int | None = None,
    ignore_label: int | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The scored steps as flat (true, predicted) label arrays and the class count ``K``.

    Raises:
        ConfigError: on bad shapes, non-integer labels, or labels outside ``0 .. K-1``.
    """
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    probs = p.ndim == t.ndim + 1
    if t.ndim != 2 or not (p.shape == t.shape or (probs and p.shape[:2] == t.shape)):
        raise ConfigError(
            "categorical metrics need y_true [trial, time] and y_pred [trial, time, K] or "
            f"[trial, time]; got {t.shape} and {p.shape}"
        )
    keep = np.ones(t.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if keep.shape != t.shape:
        raise ConfigError(f"mask shape {keep.shape} differs from y_true shape {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        tk = t[keep]
        if not (np.all(np.isfinite(tk)) and np.all(tk == np.round(tk))):
            raise ConfigError(f"categorical y_true must hold integer labels; got dtype {t.dtype}")
        t = np.where(keep, t, 0).astype(np.int64)
    if ignore_label is not None:
        keep = keep & (t != ignore_label)
    pred = np.argmax(p, axis=-1) if probs else p
    tk, pk = t[keep].astype(np.int64), np.asarray(pred)[keep]
    if not probs and not np.all(pk == np.round(pk)):
        raise ConfigError("predicted labels must be integers (or pass probabilities [..., K])")
    pk = pk.astype(np.int64)
    if n_classes is not None:
        k = int(n_classes)
    elif probs:
        k = p.shape[-1]
    else:
        k = int(max(tk.max(initial=-1), pk.max(initial=-1))) + 1
    if probs and p.shape[-1] != k:
        raise ConfigError(f"y_pred has {p.shape[-1]} class probabilities but n_classes is {k}")
    for name, arr in (("y_true", tk), ("y_pred", pk)):
        bad = arr[(arr < 0) | (arr >= k)]
        if bad.size:
            raise ConfigError(
                f"{name} has label {int(bad[0])} outside 0..{k - 1} "
                "(set ignore_label or n_classes?)"
            )
    return tk, pk, k


def confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    n_classes: int | None = None,
    ignore_label: int | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Counts of (true, predicted) label pairs, ``[K, K]`` int64: row = true, column = predicted.

    Args:
        y_true: int ``[trial, time]``, values ``0 .. K-1`` or ``ignore_label``.
        y_pred: Probabilities ``[trial, time, K]`` or labels ``[trial, time]``.
        n_classes: ``K``; default: from ``y_pred`` (see :func:`labels`).
        ignore_label: Label skipped wherever it is the true label.
        mask: bool ``[trial, time]``; False steps are skipped.
    """
    t, p, k = labels(y_true, y_pred, n_classes=n_classes, ignore_label=ignore_label, mask=mask)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def accuracy_from_confusion(cm: np.ndarray) -> float:
    """Fraction of scored steps whose label is right (NaN when none is scored)."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def balanced_accuracy_from_confusion(cm: np.ndarray) -> float:
    """Mean recall over the classes present among the true labels (NaN when none is)."""
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(cm)[present] / support[present]))


def accuracy(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    n_classes: int | None = None,
    ignore_label: int | None = None,
    mask: np.ndarray | None = None,
) -> float:
    """Fraction of scored steps labelled right; arguments as :func:`confusion_matrix`."""
    cm = confusion_matrix(y_true, y_pred, n_classes=n_classes, ignore_label=ignore_label, mask=mask)
    return accuracy_from_confusion(cm)


def balanced_accuracy(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    n_classes: int | None = None,
    ignore_label: int | None = None,
    mask: np.ndarray | None = None,
) -> float:
    """Mean per-class recall over scored steps; arguments as :func:`confusion_matrix`."""
    cm = confusion_matrix(y_true, y_pred, n_classes=n_classes, ignore_label=ignore_label, mask=mask)
    return balanced_accuracy_from_confusion(cm)
