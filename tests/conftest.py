"""Shared test fixtures: every test starts from fixed seeds and a non-interactive plot backend."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from neuroreduce.scenarios import Scenario, get_scenario, list_scenarios, register_scenario

#: A 50 ms scenario with the FCM cells (so the same cached c302 network) for quick NEURON tests.
SHORT_FCM = "fcm-50ms-test"
if SHORT_FCM not in list_scenarios():
    _fcm = get_scenario("fcm")
    register_scenario(
        Scenario(
            name=SHORT_FCM,
            description="FCM cells, 50 ms (tests)",
            inputs=_fcm.inputs,
            outputs=_fcm.outputs,
            duration_ms=50.0,
            amplitude_range_na=_fcm.amplitude_range_na,
        )
    )


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.manual_seed(0)


#: The project's reference recordings (``../shared/data`` beside the repository; read-only).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real recordings); the test is skipped where the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent")
    return SHARED_DATA
