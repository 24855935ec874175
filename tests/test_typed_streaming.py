"""Streaming works for every field: typed tasks trained from the file equal in-memory training."""

from __future__ import annotations

import pytest

from neuroreduce.datasets.io import load_dataset, save_dataset
from neuroreduce.datasets.streaming import StreamingDataset
from neuroreduce.simulators.toy_tasks import get_task_generator
from neuroreduce.training import TrainConfig, train


@pytest.mark.parametrize("task", ["toy_spikes", "toy_subsets", "toy_behaviour"])
def test_streamed_typed_training_equals_in_memory(tmp_path, task: str) -> None:
    ds = get_task_generator(task).make(12, seed=1, dt_ms=2.0)
    path = save_dataset(ds, tmp_path / "d.h5")
    cfg = TrainConfig(hidden=4, seeds=(0, 1), epochs=2, batch_size=4, learning_rate=0.01)
    loaded = train(load_dataset(path), cfg, tmp_path / "mem", progress=False)
    with StreamingDataset(path) as source:
        assert source.content_hash() == ds.content_hash()
        streamed = train(source, cfg, tmp_path / "stream", progress=False)
    assert [r.valid_loss for r in streamed.history] == [r.valid_loss for r in loaded.history]
    assert [r.terms for r in streamed.history] == [r.terms for r in loaded.history]
    # the control: another seed's history differs, so the comparison can fail
    other = train(load_dataset(path), TrainConfig(**{**cfg.to_dict(), "seeds": (2, 3)}),
                  tmp_path / "other", progress=False)
    assert [r.valid_loss for r in other.history] != [r.valid_loss for r in loaded.history]
