"""lecture_utils.checkpoint: the random state travels between machines with different numbers of GPUs."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lecture_utils import checkpoint


@pytest.fixture
def two_gpu_state(monkeypatch):
    """The random state as a machine with two visible GPUs records it (CUDA faked)."""
    saved = [torch.full((16,), 1, dtype=torch.uint8), torch.full((16,), 2, dtype=torch.uint8)]
    with monkeypatch.context() as m:
        m.setattr(torch.cuda, "is_available", lambda: True)
        m.setattr(torch.cuda, "get_rng_state_all", lambda: list(saved))
        state = checkpoint.rng_state()
    assert [int(s[0]) for s in state["cuda"]] == [1, 2]
    return state


def _machine(monkeypatch, gpus: int) -> list[tuple[int, int]]:
    """Fake a machine with `gpus` visible CUDA devices; returns the log of set_rng_state calls."""
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: calls.append((int(state[0]), device)))
    return calls


def test_a_two_gpu_checkpoint_resumes_on_one_gpu_with_the_first_devices_state(two_gpu_state, monkeypatch):
    calls = _machine(monkeypatch, 1)
    checkpoint.set_rng_state(two_gpu_state)
    assert calls == [(1, 0)]


def test_a_two_gpu_checkpoint_resumes_on_a_machine_without_cuda(two_gpu_state, monkeypatch):
    calls = _machine(monkeypatch, 0)
    checkpoint.set_rng_state(two_gpu_state)
    assert calls == []


def test_a_one_gpu_checkpoint_sets_only_the_first_of_two_gpus(monkeypatch):
    state = checkpoint.rng_state()
    state["cuda"] = [torch.full((16,), 7, dtype=torch.uint8)]
    calls = _machine(monkeypatch, 2)
    checkpoint.set_rng_state(state)
    assert calls == [(7, 0)]


def test_python_numpy_and_torch_draws_repeat_after_the_state_is_put_back():
    state = checkpoint.rng_state()
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    checkpoint.set_rng_state(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == first
