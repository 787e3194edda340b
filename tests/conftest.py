"""Shared test settings.

The tests' forward passes are small: one compute thread runs them as fast as two, and with
pytest-xdist's two workers on two cores it keeps them from fighting over the cores (which made
the model tests three times slower). `make test` also sets OMP_NUM_THREADS=1 for the notebooks.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_compute_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
