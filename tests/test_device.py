"""Precision by compute capability and the device-memory budget, with CUDA mocked (no GPU needed)."""

from __future__ import annotations

import pytest
import torch

from lecture_utils import device as dev
from lecture_utils.trainer import ModelTrainer


@pytest.fixture
def fake_gpu(monkeypatch):
    """A CUDA device of a chosen capability and memory, without touching a real GPU."""
    state = {"capability": (7, 5), "free": 15 * 2**30, "total": 16 * 2**30, "reserved": 0, "allocated": 0}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: state["capability"])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (state["free"], state["total"]))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: state["reserved"])
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: state["allocated"])
    return state


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"), ((8, 0), "bf16"),
                                                  ((8, 6), "bf16"), ((9, 0), "bf16")])
def test_precision_follows_compute_capability(fake_gpu, capability, expected):
    fake_gpu["capability"] = capability
    assert dev.choose_precision("cuda") == expected


def test_cpu_trains_in_fp32():
    assert dev.choose_precision("cpu") == "fp32"
    assert ModelTrainer(device="cpu").precision == "fp32"
    assert ModelTrainer(device="cpu").scaler is None


def test_t4_trainer_uses_fp16_with_a_grad_scaler(fake_gpu):
    fake_gpu["capability"] = (7, 5)
    trainer = ModelTrainer(device="cuda")
    assert trainer.precision == "fp16"
    assert isinstance(trainer.scaler, torch.amp.GradScaler)
    assert trainer.autocast_dtype == torch.float16


def test_h100_trainer_uses_bf16_without_a_scaler(fake_gpu):
    fake_gpu["capability"] = (9, 0)
    trainer = ModelTrainer(device="cuda")
    assert trainer.precision == "bf16" and trainer.scaler is None
    assert trainer.autocast_dtype == torch.bfloat16


def test_amp_off_means_fp32_on_a_gpu(fake_gpu):
    trainer = ModelTrainer(device="cuda", amp=False)
    assert trainer.precision == "fp32" and trainer.scaler is None


def test_explicit_precision_is_checked():
    with pytest.raises(ValueError, match="bf16, fp16, fp32"):
        dev.choose_precision("cpu", "half")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        dev.choose_precision("cpu", "bf16")


def test_free_memory_counts_pytorchs_reserved_unused_blocks(fake_gpu):
    fake_gpu.update(free=2 * 2**30, reserved=6 * 2**30, allocated=1 * 2**30)
    # the driver sees 2 GiB free; PyTorch holds 5 GiB reserved but unused, which a new tensor can take
    assert dev.device_free_bytes("cuda") == 7 * 2**30


def test_cache_budget_is_a_quarter_of_a_16_gb_gpu(fake_gpu):
    assert dev.cache_budget("cuda") == 4 * 2**30


def test_cache_budget_never_exceeds_what_is_free(fake_gpu):
    fake_gpu.update(free=1 * 2**30)
    assert dev.cache_budget("cuda") == 1 * 2**30


def test_cpu_has_no_cache_budget():
    assert dev.cache_budget("cpu") is None


@pytest.mark.parametrize("capability", [(7, 5), (7, 0), (6, 1)])
def test_bf16_is_refused_below_compute_capability_8(fake_gpu, capability):
    fake_gpu["capability"] = capability
    with pytest.raises(ValueError, match=rf"'bf16' needs compute capability 8.0 or more \(this GPU has "
                                         rf"{capability[0]}.{capability[1]}"):
        dev.choose_precision("cuda", "bf16")
    with pytest.raises(ValueError, match="needs compute capability 8.0"):
        ModelTrainer(device="cuda", precision="bf16")
    assert dev.choose_precision("cuda", "fp16") == "fp16"


def test_bf16_is_accepted_from_compute_capability_8(fake_gpu):
    fake_gpu["capability"] = (8, 0)
    assert dev.choose_precision("cuda", "bf16") == "bf16"
