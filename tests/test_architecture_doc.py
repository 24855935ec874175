"""The worked example of docs/architecture.md (adding a model family) runs as written."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from neuroreduce.models import registry
from neuroreduce.training import TrainConfig, predict, train

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _family_example() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### A model family", 1)[1].split("###", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the family section should hold exactly one python block"
    return blocks[0]


@pytest.fixture
def toy_mlp_registered(monkeypatch):
    module = types.ModuleType("doc_example")  # dataclasses look their module up
    monkeypatch.setitem(sys.modules, "doc_example", module)
    exec(compile(_family_example(), str(DOC), "exec"), module.__dict__)
    try:
        yield
    finally:
        registry._MODELS.pop("toy_mlp", None)


def test_the_documented_family_trains_as_a_seed_ensemble(tmp_path, toy_mlp_registered) -> None:
    from neuroreduce.pipeline import simulate

    assert "toy_mlp" in registry.list_models()
    ds = simulate("toy", n_stimuli=12, dt_out_ms=2.0, progress=False)
    cfg = dict(model="toy_mlp", hidden=8, model_options=(("layers", 2),), epochs=4,
               batch_size=4, learning_rate=0.01)
    both = train(ds, TrainConfig(seeds=(3, 5), **cfg), tmp_path / "both", progress=False)
    alone = train(ds, TrainConfig(seeds=(5,), **cfg), tmp_path / "alone", progress=False)
    p_both = predict(both, ds.inputs)
    p_alone = predict(alone, ds.inputs)
    np.testing.assert_allclose(p_both[1], p_alone[0], rtol=0, atol=1e-5)
    # the control: another member is not the lone model
    assert np.abs(p_both[0] - p_alone[0]).max() > 1e-3


def test_an_unknown_option_of_the_documented_family_is_one_line(toy_mlp_registered) -> None:
    from neuroreduce.errors import ConfigError

    with pytest.raises(ConfigError, match="model 'toy_mlp' has no option.*depth.*layers"):
        TrainConfig(model="toy_mlp", model_options=(("depth", 2),))
    with pytest.raises(ConfigError, match="layers must be >= 1"):
        TrainConfig(model="toy_mlp", model_options=(("layers", 0),))
