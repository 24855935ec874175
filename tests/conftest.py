"""Shared test fixtures: every test starts from fixed seeds and a non-interactive plot backend."""

from __future__ import annotations

import random

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.manual_seed(0)
