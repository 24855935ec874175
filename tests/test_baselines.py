"""Non-gradient baselines (``ridge_arx``, ``svm``, ``glm``): closed-form answers with wrong
controls, the module <-> design-matrix identity, masked values kept out of every fit, and one
end-to-end run per family and typed task (train, save, load, predict, evaluate; CLI too).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from neuroreduce.cli import app
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field
from neuroreduce.datasets.io import load_dataset
from neuroreduce.datasets.pieces import apply_split
from neuroreduce.datasets.split_strategies import SplitSpec
from neuroreduce.errors import ConfigError
from neuroreduce.evaluation.field_results import evaluate_fields
from neuroreduce.models.baselines import glm, ridge_arx, svm
from neuroreduce.models.baselines.filters import (
    BasisFilter,
    CausalFilter,
    basis_features,
    lag_features,
    raised_cosine_basis,
)
from neuroreduce.models.registry import get_family, model_config
from neuroreduce.simulators.toy_tasks import get_task_generator
from neuroreduce.training import TrainConfig, load_run, predict_fields, train
from neuroreduce.training.assemble import Assembled
from neuroreduce.training.task import Head, InputBlock, TaskLayout

runner = CliRunner()

#: Kernel recovery: max |fitted - true| tap of the FIR kernel (taps of size ~0.3-1, noise 0.05).
KERNEL_TOL = 0.02
#: Test ROC AUC of spike bins (chance 0.5); the basis GLM must reach the higher one.
AUC_BOUND, GLM_AUC_BOUND = 0.7, 0.85
#: Test accuracy of behaviour in an unseen individual (chance about 0.5).
ACCURACY_BOUND = 0.95
#: Test RMSE of the recorded activity, relative to predicting each channel's training mean.
RMSE_RATIO = 0.6


def continuous_layout(n_inputs: int, n_outputs: int = 1) -> TaskLayout:
    names = tuple(f"c{i}" for i in range(n_outputs))
    return TaskLayout((InputBlock("inputs", "continuous", tuple(f"i{i}" for i in range(n_inputs)),
                                  0),), (Head("outputs", "continuous", names, 1, 0),))


# ------------------------------------------------------------------ closed-form answers
def linear_system(n_trials: int, kernel: np.ndarray, seed: int) -> Assembled:
    """Coloured (AR(1), a = 0.8) inputs through the FIR ``kernel [1, in, lags]`` + 0.5 bias +
    N(0, 0.05) noise: with coloured inputs a filter with too few lags is biased."""
    rng = np.random.default_rng(seed)
    n_in, n_time = kernel.shape[1], 300
    e = rng.normal(size=(n_trials, n_time, n_in))
    x = np.zeros_like(e)
    for t in range(n_time):
        x[:, t] = 0.8 * x[:, t - 1] + 0.6 * e[:, t] if t else e[:, t]
    module = CausalFilter(n_in, 1, kernel.shape[2])
    module.set_kernel(kernel, np.array([0.5]))
    xt = torch.tensor(x, dtype=torch.float32)
    with torch.no_grad():
        y = module(xt) + 0.05 * torch.from_numpy(rng.normal(size=(n_trials, n_time, 1))).float()
    return Assembled(xt, {"outputs": y}, {})


def true_kernel() -> np.ndarray:
    lags = np.arange(10)
    return np.stack([np.exp(-lags / 3.0), -0.6 * np.sin(lags / 3.0)])[None]  # [1, 2, 10]


def test_ridge_arx_recovers_the_fir_kernel_and_too_few_lags_do_not() -> None:
    kernel = true_kernel()
    train_, valid = linear_system(20, kernel, 0), linear_system(6, kernel, 1)
    layout = continuous_layout(2)
    cfg = ridge_arx.RidgeARXConfig(hidden=10, alphas=(1e-6, 1e-3))
    fitted = ridge_arx.fit(cfg, train=train_, valid=valid, layout=layout, seed=0)
    got = fitted.kernel().detach().numpy()
    assert np.abs(got - kernel).max() < KERNEL_TOL
    assert fitted.conv.bias.item() == pytest.approx(0.5, abs=KERNEL_TOL)
    # control: 5 lags cannot hold the kernel, and the lags they have are biased
    short = ridge_arx.fit(replace(cfg, hidden=5), train=train_, valid=valid, layout=layout,
                          seed=0)
    assert np.abs(short.kernel().detach().numpy() - kernel[..., :5]).max() > 5 * KERNEL_TOL


def test_filters_equal_their_design_matrices_and_are_causal() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 40, 2)).astype(np.float32)
    trial, time = np.repeat(np.arange(3), 40), np.tile(np.arange(40), 3)
    basis = raised_cosine_basis(12, 4)
    for module, design in (
        (CausalFilter(2, 3, 7), lag_features(x, trial, time, 7)),
        (BasisFilter(2, 3, basis), basis_features(x, trial, time, basis)),
    ):
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(torch.randn(p.shape))
            y = module(torch.from_numpy(x)).numpy().reshape(-1, 3)
            w = module.kernel().numpy() if isinstance(module, CausalFilter) else \
                module.weight.numpy()
            b = (module.conv.bias if isinstance(module, CausalFilter) else module.bias).numpy()
            np.testing.assert_allclose(y, design @ w.reshape(3, -1).T + b, rtol=1e-4, atol=1e-4)
            later = x.copy()
            later[:, 25:] += 5.0  # the future changes, the past outputs do not
            y2 = module(torch.from_numpy(later)).numpy().reshape(3, 40, 3)
            np.testing.assert_array_equal(y2[:, :25], y.reshape(3, 40, 3)[:, :25])
            assert not np.allclose(y2[:, 25:], y.reshape(3, 40, 3)[:, 25:])


def test_raised_cosine_basis_is_log_stretched() -> None:
    basis = raised_cosine_basis(50, 6)
    assert basis.shape == (50, 6) and basis.min() >= 0 and basis.max() <= 1
    assert basis[0, 0] == pytest.approx(1.0) and basis[-1, -1] == pytest.approx(1.0)
    widths = (basis > 0.5).sum(axis=0)[:-1]  # (the last bump is cut at the filter's end)
    assert (np.diff(widths) > 0).all() and widths[-1] > 3 * widths[0]  # wider at long lags


# ------------------------------------------------------------------ masks and subsampling
def masked_task(seed: int) -> tuple[Assembled, TaskLayout]:
    """Inputs -> a binary and a 3-class head; 30 % of values masked."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(8, 60, 3)).astype(np.float32))
    drive = x[..., 0] - x[..., 1]
    spikes = (drive > 0.5).float()[..., None]
    labels = torch.bucketize(x[..., 2].contiguous(), torch.tensor([-0.5, 0.5]))[..., None]
    masks = {k: torch.from_numpy(rng.random((8, 60, 1)) > 0.3) for k in ("s", "lab")}
    layout = TaskLayout(
        (InputBlock("inputs", "continuous", ("a", "b", "c"), 0),),
        (Head("s", "binary", ("s",), 1, 0), Head("lab", "categorical", ("l",), 3, 1, -1)))
    return Assembled(x, {"s": spikes, "lab": labels}, masks), layout


def garbled(data: Assembled) -> Assembled:
    """The same data with every masked target value changed."""
    s, lab = data.targets["s"].clone(), data.targets["lab"].clone()
    s[~data.masks["s"]] = 1.0 - s[~data.masks["s"]]
    lab[~data.masks["lab"]] = (lab[~data.masks["lab"]] + 1) % 3
    return Assembled(data.x, {"s": s, "lab": lab}, data.masks)


@pytest.mark.parametrize("module", [ridge_arx, svm, glm], ids=["ridge_arx", "svm", "glm"])
def test_masked_values_never_change_the_fit(module) -> None:
    (tr, layout), (va, _) = masked_task(0), masked_task(1)
    cfg = module.FAMILY["config"](hidden=4, alphas=(0.01, 0.1), class_weight="balanced",
                                  **({"bases": 3} if module is glm else {}))
    a = module.fit(cfg, train=tr, valid=va, layout=layout, seed=0).state_dict()
    b = module.fit(cfg, train=garbled(tr), valid=garbled(va), layout=layout, seed=0).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # control: the same change without the masks changes the fit
    bare = [Assembled(d.x, d.targets, {}) for d in (tr, garbled(tr))]
    c = module.fit(cfg, train=bare[0], valid=va, layout=layout, seed=0).state_dict()
    d = module.fit(cfg, train=bare[1], valid=va, layout=layout, seed=0).state_dict()
    assert not all(torch.equal(c[k], d[k]) for k in c)


def test_max_samples_subsamples_by_seed() -> None:
    kernel = true_kernel()
    tr, va, layout = linear_system(4, kernel, 0), linear_system(2, kernel, 1), continuous_layout(2)
    cfg = ridge_arx.RidgeARXConfig(hidden=10, alphas=(1e-3,), max_samples=400)

    def weights(seed: int, config=cfg) -> torch.Tensor:
        return ridge_arx.fit(config, train=tr, valid=va, layout=layout, seed=seed).conv.weight

    assert torch.equal(weights(0), weights(0)) and not torch.equal(weights(0), weights(1))
    everything = replace(cfg, max_samples=10_000)  # all 1200 steps: every seed fits the same
    assert torch.equal(weights(0, everything), weights(1, everything))


# ------------------------------------------------------------------ bad configs
@pytest.mark.parametrize(("model", "options", "message"), [
    ("ridge_arx", {"alphas": []}, "alphas must be a non-empty list"),
    ("ridge_arx", {"alphas": [1.0, -1.0]}, "alphas must be a non-empty list"),
    ("svm", {"class_weight": "auto"}, "unknown class_weight 'auto'"),
    ("ridge_arx", {"max_samples": 5}, "max_samples must be an integer >= 10"),
    ("glm", {"bases": 1}, "bases must be an integer >= 2"),
    ("glm", {"bases": 60}, "bases must be <= hidden (50)"),
    ("glm", {"log_offset": 0}, "log_offset must be a finite number > 0"),
    ("svm", {"max_iter": 0}, "max_iter must be an integer >= 1"),
])
def test_bad_configs_are_one_line_config_errors(model, options, message) -> None:
    with pytest.raises(ConfigError) as err:
        model_config(model, get_family(model).config().hidden, options)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_svm_refuses_continuous_heads_and_names_ridge_arx() -> None:
    data = linear_system(3, true_kernel(), 0)
    with pytest.raises(ConfigError, match="'outputs' is continuous: use --model ridge_arx"):
        svm.fit(svm.SVMConfig(), train=data, valid=data, layout=continuous_layout(2), seed=0)


# ------------------------------------------------------------------ typed tasks end to end
def mean_rmse(ds: Dataset, result) -> float:
    """Test RMSE of predicting each channel's training mean (same metric, same mask)."""
    mean = np.asarray(result.normalization.field_stats[0][1], np.float32)
    const = np.broadcast_to(mean, (1, ds.n_trials, ds.n_time, mean.size)).copy()
    layout = result.layout if hasattr(result, "layout") else result.io.task
    return evaluate_fields(ds, {"activity": const}, layout)[
        "activity"]["splits"]["test"]["rmse"]["mean"]


CASES = [  # (model, hidden, options, task, targets)
    ("ridge_arx", 20, (), "toy_spikes", None),
    ("glm", 40, (("bases", 8),), "toy_spikes", None),
    ("svm", 20, (), "toy_spikes", ("spikes",)),
    ("ridge_arx", 5, (), "toy_behaviour", None),
    ("glm", 10, (("bases", 3),), "toy_behaviour", None),
    ("svm", 5, (), "toy_behaviour", None),
    ("ridge_arx", 60, (), "toy_subsets", None),
    ("glm", 150, (("bases", 10),), "toy_subsets", None),
]


@pytest.mark.parametrize(("model", "hidden", "options", "task", "targets"), CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_baseline_trains_and_beats_chance_on_typed_tasks(
    tmp_path: Path, model, hidden, options, task, targets
) -> None:
    n = {"toy_spikes": 24, "toy_behaviour": 16, "toy_subsets": 16}[task]
    ds = get_task_generator(task).make(n, seed=0)
    split = (SplitSpec("leave_groups_out", {"group": "individual"}, fold=1)
             if task == "toy_behaviour" else None)
    seeds = (0,) if task == "toy_spikes" else (0, 1)  # (spikes: the slowest fits)
    cfg = TrainConfig(model=model, hidden=hidden, seeds=seeds, model_options=options,
                      targets=targets, split=split)
    result = train(ds, cfg, tmp_path / "run", progress=False)
    assert list(result.best_epochs) == [1] * len(seeds)  # fitted once, no epochs
    folded = apply_split(ds, split, seed=0) if split else ds
    pred = predict_fields(result, folded)
    test = {f: v["splits"]["test"] for f, v in
            evaluate_fields(folded, pred, result.layout).items()}
    if task == "toy_spikes":
        bound = GLM_AUC_BOUND if model == "glm" else AUC_BOUND
        assert test["spikes"]["roc_auc"]["mean"] > bound
        if "outputs" in test:  # the soma voltage: a linear filter explains a fifth of it
            assert test["outputs"]["explained_variance"]["mean"] > 0.2
    elif task == "toy_behaviour":
        assert test["behaviour"]["accuracy"]["mean"] > ACCURACY_BOUND
    else:
        assert test["activity"]["rmse"]["mean"] < RMSE_RATIO * mean_rmse(ds, result)
    # the saved run loads and predicts the same
    loaded = predict_fields(load_run(tmp_path / "run"), folded)
    assert pred.keys() == loaded.keys()
    for k in pred:
        np.testing.assert_array_equal(pred[k], loaded[k])


def test_unrecorded_activity_never_changes_the_fitted_run(tmp_path: Path) -> None:
    ds = get_task_generator("toy_subsets").make(8, seed=0)
    f = ds.field("activity")
    hidden = ~f.availability[ds.field("individual").values][:, None, :].repeat(ds.n_time, 1)
    values = np.array(f.values)

    def with_values(v: np.ndarray) -> Dataset:
        return replace(ds, fields=tuple(Field(g.spec, v, g.availability)
                                        if g.name == "activity" else g for g in ds.fields))

    changed, recorded = values.copy(), values.copy()
    changed[hidden] = 1000.0
    recorded[~hidden & np.isfinite(values)] += 1.0
    for model, hid in (("ridge_arx", 10), ("glm", 20)):
        cfg = TrainConfig(model=model, hidden=hid, seeds=(0,))
        runs = [train(with_values(v), cfg, tmp_path / f"{model}{i}", progress=False)
                for i, v in enumerate((values, changed, recorded))]
        states = [r.model.member_state_dict(0) for r in runs]
        assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
        assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])  # control


def invoke(*args: object) -> str:
    r = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_cli_trains_each_baseline_in_one_step(tmp_path: Path) -> None:
    subsets, behaviour = tmp_path / "s.h5", tmp_path / "b.h5"
    invoke("simulate", "toy_subsets", "--stimuli", 8, "-o", subsets)
    invoke("simulate", "toy_behaviour", "--stimuli", 8, "-o", behaviour)
    for model, data, extra in (
        ("ridge_arx", subsets, ["--hidden", 40]),
        ("glm", subsets, ["--hidden", 100, "--model-option", "bases=8"]),
        ("svm", behaviour, ["--hidden", 3, "--model-option", "alphas=[0.01, 0.1]"]),
    ):
        run = tmp_path / model
        invoke("train", data, "-o", run, "--model", model, "--seeds", 1, *extra)
        invoke("evaluate", run)
        fields = json.loads((run / "results.json").read_text())["fields"]
        test = next(iter(fields.values()))["splits"]["test"]
        if data == subsets:
            assert test["rmse"]["mean"] < RMSE_RATIO * mean_rmse(load_dataset(data),
                                                                 load_run(run))
        else:
            assert test["accuracy"]["mean"] > ACCURACY_BOUND
    r = runner.invoke(app, ["train", str(subsets), "-o", str(tmp_path / "bad"), "--model", "svm"])
    assert r.exit_code == 2 and "use --model ridge_arx" in r.output
    assert "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if "error" in line]) == 1
