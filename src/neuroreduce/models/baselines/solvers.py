"""Convex fits of one output channel on a design matrix, penalty chosen on held-out steps.

Every solver minimises the mean over the ``n`` train steps ``(1/n) sum_n w_n loss(y_n, z_n) +
alpha ||W||^2`` over the linear read-out ``z = X W + b`` (``b`` unpenalised, except by liblinear,
see :func:`linear_svm`) for each ``alpha`` of the grid (a per-step penalty: its meaning does not
change with the number of steps, nor with subsampling), and keeps the ``alpha`` whose fit has
the lowest mean loss on the validation steps (the loss it minimises, weighted the same way; the
largest ``alpha`` when no validation step counts). ``X`` is standardised by the caller.

* :func:`ridge` — squared error (a Gaussian GLM; Hoerl & Kennard 1970), in closed form from one
  eigen-decomposition of ``X'X`` for the whole grid;
* :func:`logistic` — Bernoulli (binary) or multinomial (categorical) log-likelihood, scikit-learn
  ``LogisticRegression`` (L-BFGS, ``C = 1 / (2 n alpha)``, warm-started along the grid);
* :func:`linear_svm` — squared hinge, one-vs-rest, scikit-learn ``LinearSVC`` (liblinear;
  Fan et al. 2008), ``C = 1 / (2 n alpha)``; decision values are the logits.

Each returns ``(W [n_features, width], b [width])``: ``width`` 1 for a continuous or binary
channel, ``n_classes`` logits for a categorical one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Problem:
    """One output channel's fitting problem (rows: time steps whose value counts).

    Attributes:
        x: Standardised train features ``[n, n_features]`` (float64).
        y: Train targets ``[n]``: z-scored values (continuous), 0/1 (binary), class indices.
        x_valid: Validation features ``[m, n_features]``.
        y_valid: Validation targets ``[m]``.
        kind: ``continuous``, ``binary`` or ``categorical``.
        n_classes: Classes (categorical), else 1.
        alphas: L2 penalties to try.
        balanced: Weight classes by ``n / (n_present_classes * count)`` of the train steps.
        max_iter: Iteration limit of the iterative solvers.
        seed: Seed of liblinear's coordinate order.
    """

    x: np.ndarray
    y: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    kind: str
    n_classes: int
    alphas: tuple[float, ...]
    balanced: bool = False
    max_iter: int = 500
    seed: int = 0

    @property
    def width(self) -> int:
        return self.n_classes if self.kind == "categorical" else 1


Solver = Callable[[Problem], tuple[np.ndarray, np.ndarray]]


def ridge(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression of a continuous channel (see the module docstring)."""
    n_feat = p.x.shape[1]
    if p.y.size == 0:
        return np.zeros((n_feat, 1)), np.zeros(1)
    mean_x, mean_y = p.x.mean(axis=0), p.y.mean()
    xc = p.x - mean_x
    evals, evecs = np.linalg.eigh(xc.T @ xc)
    proj = evecs.T @ (xc.T @ (p.y - mean_y))
    fits = []
    for alpha in p.alphas:
        w = evecs @ (proj / (np.clip(evals, 0.0, None) + alpha * p.y.size))
        fits.append((w[:, None], np.array([mean_y - mean_x @ w])))

    def loss(w: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean((p.x_valid @ w[:, 0] + b[0] - p.y_valid) ** 2))

    return _choose(p, list(p.alphas), fits, loss)


def logistic(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """(Multinomial) logistic regression of a binary or categorical channel."""
    from sklearn.linear_model import LogisticRegression

    def make():
        return LogisticRegression(max_iter=p.max_iter, warm_start=True)

    return _classify(p, make, _log_loss, warm=True)


def linear_svm(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Linear SVM (squared hinge, one-vs-rest) of a binary or categorical channel.

    liblinear also penalises the intercept (as a feature of value 1); with standardised
    features this barely matters. The primal (trust-region Newton) problem is solved when there
    are more steps than features (the usual case, and far faster than the dual there).
    """
    from sklearn.svm import LinearSVC

    def make():
        return LinearSVC(max_iter=p.max_iter, random_state=p.seed,
                         dual=bool(p.x.shape[0] < p.x.shape[1]))  # primal: many more steps

    return _classify(p, make, _squared_hinge, warm=False)


# ---------------------------------------------------------------------------- shared parts
def _choose(p: Problem, alphas: list[float], fits: list, loss: Callable[..., float]):
    """The fit (aligned with ``alphas``) of lowest validation loss (largest alpha if none)."""
    if p.y_valid.size == 0:
        return fits[int(np.argmax(alphas))]
    return fits[int(np.argmin([loss(w, b) for w, b in fits]))]


def _class_weights(p: Problem, present: np.ndarray) -> np.ndarray:
    """Weight per class index (``[max(n_classes, 2)]``): balanced over present classes, or 1."""
    k = max(p.n_classes, 2)
    weights = np.ones(k)
    if p.balanced:
        counts = np.bincount(p.y, minlength=k).astype(np.float64)
        weights[present] = p.y.size / (present.size * counts[present])
    return weights


def _classify(p: Problem, make: Callable, loss_fn: Callable, *, warm: bool):
    y = p.y.astype(np.int64)
    present = np.unique(y)
    weights = _class_weights(p, present)
    if present.size < 2:  # one class only: a constant prediction (add-one-half odds)
        return np.zeros((p.x.shape[1], p.width)), _constant_logits(p, y)
    alphas = sorted(p.alphas, reverse=True)  # strongest penalty first (warm starts)
    fits, model = [], None
    for alpha in alphas:
        if model is None or not warm:
            model = make()
        model.set_params(C=1.0 / (2.0 * alpha * y.size),
                         class_weight={int(c): float(weights[c]) for c in present})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the user's choice
            model.fit(p.x, y)
        fits.append(_columns(p, model.coef_, model.intercept_, present,
                             half=loss_fn is _log_loss))
    yv = p.y_valid.astype(np.int64)

    def loss(w: np.ndarray, b: np.ndarray) -> float:
        return float(np.average(loss_fn(p.x_valid @ w + b, yv, p.kind), weights=weights[yv]))

    return _choose(p, alphas, fits, loss)


def _columns(p: Problem, coef: np.ndarray, intercept: np.ndarray, present: np.ndarray, *,
             half: bool):
    """scikit-learn's coefficients -> ``(W [n_features, width], b [width])`` logits.

    Two present classes give one decision value ``d`` (for ``present[1]``): the binary logit,
    or the class logits ``(-d/2, d/2)`` (logistic: the softmax is ``sigmoid(d)``) or
    ``(-d, d)`` (SVM: the one-vs-rest decision values of both classes). Classes absent from the
    train steps get zero weights and a logit ``log(n + 1)`` below the lowest intercept.
    """
    if p.kind == "binary":
        return coef.T.copy(), intercept.copy()
    if present.size == 2:
        scale = 0.5 if half else 1.0
        coef = np.stack([-coef[0], coef[0]]) * scale
        intercept = np.array([-intercept[0], intercept[0]]) * scale
    w = np.zeros((coef.shape[1], p.n_classes))
    b = np.full(p.n_classes, float(intercept.min()) - np.log(p.y.size + 1.0))
    w[:, present], b[present] = coef.T, intercept
    return w, b


def _constant_logits(p: Problem, y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=max(p.n_classes, 2)).astype(np.float64) + 0.5
    if p.kind == "binary":
        return np.array([np.log(counts[1] / counts[0])])
    return np.log(counts / counts.sum())


def _log_loss(z: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """Per-step negative log-likelihood of logits ``z [m, width]``."""
    if kind == "binary":
        s = z[:, 0]
        return np.logaddexp(0.0, s) - y * s
    zmax = z.max(axis=1, keepdims=True)
    lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
    return lse - z[np.arange(y.size), y]


def _squared_hinge(z: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """Per-step one-vs-rest squared hinge of decision values ``z [m, width]``."""
    if kind == "binary":
        signs = (2.0 * y - 1.0)[:, None]
    else:
        signs = -np.ones_like(z)
        signs[np.arange(y.size), y] = 1.0
    return (np.maximum(0.0, 1.0 - signs * z) ** 2).sum(axis=1)
