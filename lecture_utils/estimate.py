"""How long a training run takes on a GPU, estimated before it starts (and checked by ``bench gpu-check``).

The method, per image of one training step:

* **compute**: a training step costs about 3x a forward pass (the forward, then the gradients with
  respect to the activations and to the weights). The forward rate of each GPU is taken from a
  published measurement, NVIDIA's ResNet-50 v1.5 benchmark for PyTorch (DeepLearningExamples,
  mixed precision): ResNet-50's 4.09 G multiply-adds at 1,198 images/s of inference on a T4 (batch
  256) is 4.9 T multiply-adds/s. The same table's V100 numbers (3,382 images/s inference, 1,200
  training) confirm the factor (2.8). For an A100 it gives training at 2,470 images/s, i.e. a
  forward rate of 4.09 G x 2,470 x 2.8 = 28 T/s; H100-class cards are counted at the A100's rate
  (a lower bound).
* **memory traffic**: small and depthwise convolutions do few multiply-adds per byte, so their time
  is set by memory bandwidth: every activation (each leaf module's output) is written in the
  forward pass and read or written about 5 more times in the backward pass, 2 bytes each in
  mixed precision; the card's bandwidth is its data-sheet figure.
* the larger of the two, plus a fixed cost per layer and step (kernel launches, ~0.1 ms for a
  conv or linear layer with its norm and activation, forward and backward).

Evaluation passes cost a third of a training pass per image. The data path adds little: the
images already sit on the GPU and are resized and augmented per batch there. ``python -m
lecture_utils.bench gpu-check`` measures images/second of each lesson's configuration on a real
GPU and prints the measured time beside this estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["GPU", "GPUS", "TrainingCost", "meta_model", "training_cost", "estimate_seconds", "format_minutes"]

RESNET50_MACS = 4.09e9  # multiply-adds of one 224-px forward pass (torchvision's ResNet-50)
TRAIN_TO_FORWARD = 2.8  # V100: 3,382 images/s inference / 1,200 training (NVIDIA, ResNet-50 v1.5, AMP)
ACTIVATION_PASSES = 6   # each activation: written once forward, read/written ~5 times backward
LAYER_OVERHEAD_S = 1e-4  # per conv/linear layer and training step: kernel launches (forward + backward)


@dataclass(frozen=True)
class GPU:
    """One GPU's rates: forward multiply-adds per second (measured) and memory bandwidth (data sheet)."""

    name: str
    forward_macs_per_s: float
    bandwidth_bytes_per_s: float


GPUS: dict[str, GPU] = {
    # ResNet-50 inference, mixed precision, batch 256: 1,198 images/s
    "t4": GPU("Tesla T4 (Colab)", RESNET50_MACS * 1198, 320e9),
    # ResNet-50 training, mixed precision: 2,470 images/s (A100 80 GB); H100 counted at the A100's rate
    "a100": GPU("A100", RESNET50_MACS * 2470 * TRAIN_TO_FORWARD, 2.0e12),
    "h100": GPU("H100-class (counted at the A100's rate)", RESNET50_MACS * 2470 * TRAIN_TO_FORWARD, 3.35e12),
}


@dataclass(frozen=True)
class TrainingCost:
    """What one image costs a network at one resolution: multiply-adds, activations, and layer count."""

    macs: int
    activations: int
    layers: int


def meta_model(build: Any, *args: Any, **kwargs: Any) -> Any:
    """``build(*args, **kwargs)`` made on the ``meta`` device: shapes only, no memory and no initialisation
    arithmetic (VGG16's 138 M parameters cost milliseconds instead of seconds), for :func:`training_cost`."""
    import torch

    with torch.device("meta"):
        return build(*args, **kwargs)


def training_cost(model: Any, resolution: int, in_chans: int = 3) -> TrainingCost:
    """Multiply-adds and activation elements of one image's forward pass, and conv/linear layers.

    Runs the model on the ``meta`` device (shapes only, no arithmetic), so a 224-px VGG16 costs nothing.
    """
    import copy

    import torch
    from torch import nn

    from lecture_utils.profile import _layer_macs

    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    meta = copy.deepcopy(model).to("meta").eval()
    totals = {"macs": 0, "activations": 0, "layers": 0}

    def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            totals["activations"] += output.numel()
            totals["macs"] += _layer_macs(module, output)
        if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
            totals["layers"] += 1

    handles = [m.register_forward_hook(hook) for m in meta.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            meta(torch.empty(1, in_chans, resolution, resolution, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return TrainingCost(int(totals["macs"]), int(totals["activations"]), int(totals["layers"]))


def estimate_seconds(cost: TrainingCost, train_images: int, val_images: int, epochs: int,
                     batch_size: int, gpu: str = "t4") -> float:
    """Estimated wall time (s) of `epochs` epochs of training plus one evaluation each on `gpu`."""
    if gpu not in GPUS:
        raise ValueError(f"unknown gpu {gpu!r}; allowed: {', '.join(GPUS)}")
    spec = GPUS[gpu]
    compute = TRAIN_TO_FORWARD * cost.macs / spec.forward_macs_per_s
    memory = ACTIVATION_PASSES * cost.activations * 2 / spec.bandwidth_bytes_per_s
    per_image = max(compute, memory)
    steps = math.ceil(train_images / batch_size)
    train = train_images * per_image + steps * cost.layers * LAYER_OVERHEAD_S
    evaluate = val_images * per_image / 3 + math.ceil(val_images / batch_size) * cost.layers * LAYER_OVERHEAD_S / 3
    return epochs * (train + evaluate)


def format_minutes(seconds: float) -> str:
    """``"4.2 min"`` or ``"3.1 h"``."""
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.1f} min"
