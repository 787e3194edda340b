"""What the training device can do: the precision to train in, and how much memory a data cache may take.

Precision by compute capability (``torch.cuda.get_device_capability``):

* 8.0 and up (A100, L4, RTX 30xx/40xx, H100, H200): bf16 autocast. bf16 has float32's exponent
  range, so gradients need no scaling.
* below 8.0 (T4 is 7.5, V100 7.0): fp16 autocast with ``torch.amp.GradScaler``. These GPUs have
  fp16 tensor cores but no bf16 ones; cuDNN does not run bf16 convolutions on them, so bf16 would
  take slow fallback kernels. fp16's narrow range makes small gradients underflow, which the
  scaler prevents by scaling the loss up before ``backward``.
* the CPU (and any other device): float32. bf16 autocast on a CPU without AMX is slower than float32.

The memory decision counts what PyTorch already holds: ``torch.cuda.mem_get_info`` reports the
memory the driver has free, which excludes the blocks PyTorch's caching allocator keeps reserved
but unused, so those are added back.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRECISIONS", "BF16_CAPABILITY", "choose_precision", "device_free_bytes", "cache_budget", "DEVICE_CACHE_FRACTION"]

PRECISIONS = ("bf16", "fp16", "fp32")
# bf16 tensor cores came with Ampere (compute capability 8.0); a T4 (7.5) or V100 (7.0) has none
BF16_CAPABILITY = (8, 0)
# a data cache may take at most this fraction of the device's memory, so that training keeps at
# least three quarters of it (a 16 GB T4: at most 4 GB of cached images)
DEVICE_CACHE_FRACTION = 0.25


def choose_precision(device: Any, precision: str | None = None) -> str:
    """The precision to train in on `device`: bf16 (CUDA capability >= 8.0), fp16 (below), fp32 (CPU).

    An explicit `precision` (bf16, fp16, fp32) is checked and returned; fp16 and bf16 need CUDA, bf16
    compute capability 8.0 or more.
    """
    import torch

    device = torch.device(device)
    if precision is not None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (or None: chosen by the "
                             f"device), got {precision!r}")
        if precision != "fp32" and device.type != "cuda":
            raise ValueError(f"precision {precision!r} needs a CUDA device; on {device.type} use 'fp32'")
        if precision == "bf16" and torch.cuda.get_device_capability(device) < BF16_CAPABILITY:
            major, minor = torch.cuda.get_device_capability(device)
            raise ValueError(f"precision 'bf16' needs compute capability {BF16_CAPABILITY[0]}.{BF16_CAPABILITY[1]} "
                             f"or more (this GPU has {major}.{minor}: no bf16 tensor cores); use 'fp16' or 'fp32'")
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if tuple(torch.cuda.get_device_capability(device)) >= BF16_CAPABILITY else "fp16"


def device_free_bytes(device: Any) -> int:
    """Bytes a new tensor can have on CUDA `device`: the driver's free memory plus PyTorch's reserved, unused blocks."""
    import torch

    device = torch.device(device)
    free, _total = torch.cuda.mem_get_info(device)
    idle = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return int(free) + max(int(idle), 0)


def cache_budget(device: Any, fraction: float = DEVICE_CACHE_FRACTION) -> int | None:
    """Bytes of cached images `device` may hold: None (no limit) on the CPU, else `fraction` of the GPU's total.

    Never more than what is free now (:func:`device_free_bytes`), so a second cache built in the same
    process sees the first one.
    """
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return None
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    _free, total = torch.cuda.mem_get_info(device)
    return int(min(fraction * total, device_free_bytes(device)))
