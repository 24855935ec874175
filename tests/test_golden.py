"""Golden regression values: numbers that must not drift without a deliberate change.

If one of these fails after an intended change (new stimulus family, new initialisation, ...),
re-derive the value with the snippet in the test and update it in the same commit, saying why.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuroreduce import pipeline
from neuroreduce.training import TrainConfig, train


@pytest.fixture(scope="module")
def toy_dataset():
    return pipeline.simulate("toy", n_stimuli=12, dt_out_ms=1.0, seed=0, progress=False)


def test_toy_dataset_golden(toy_dataset) -> None:
    """Stimuli (seeded families), the closed-form toy simulator and the split, fingerprinted."""
    assert toy_dataset.inputs.shape == (12, 101, 4)
    np.testing.assert_allclose(
        toy_dataset.outputs.mean(axis=(1, 2))[:5],
        [-58.355633, -58.802029, -58.634361, -57.832581, -57.885925],
        rtol=0, atol=1e-4,
    )
    assert toy_dataset.split.tolist() == [2, 1, 2, 1, 0, 0, 1, 0, 0, 0, 0, 2]
    assert toy_dataset.content_hash() == (
        "c64293bcc22a9922a19c025888938b90b8b609683f04d1c08eb9de6164f9866b"
    )


def test_short_gru_training_golden(toy_dataset, tmp_path) -> None:
    """Ten epochs of a 2-seed GRU-4 ensemble: best validation RMSE (normalised) per seed."""
    result = train(
        toy_dataset,
        TrainConfig(model="gru", hidden=4, seeds=(0, 1), epochs=10, batch_size=6),
        tmp_path / "run",
        progress=False,
    )
    np.testing.assert_allclose(result.best_valid_losses, [0.819345, 0.745384], rtol=2e-4)
    assert tuple(result.best_epochs) == (10, 10)
