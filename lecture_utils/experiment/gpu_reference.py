"""The GPU reference run (``make gpu-reference``): what one H100-class GPU trains in at most 10 minutes.

Two parts, both with the proposed recipe (:data:`lecture_utils.recipe.RECOMMENDED`), validated on
the held-out split (:mod:`lecture_utils.holdout`) and tested once on the official test split:

* ``zoo``: the network of each of lessons 01-08 at its full-profile resolution (64-96 px, where the
  networks keep spatial maps; WRN at its own 32 px), on all of Fashion-MNIST's training split but
  the held-out part, every network for the same number of epochs; the cheap ones (under
  :data:`CHEAP_MACS` multiply-adds) with 3 seeds, so that their rows have a standard error;
* ``grid``: lesson 09's 3 models x 4 widths x 5 resolutions at the course's 224-96 px, on a subset.

``python -m lecture_utils.experiment.sweep plan gpu-reference --out data/reference/gpu/gpu-reference.jsonl``
runs it (resumable, as every plan); without CUDA it says so and exits 0.
"""

from __future__ import annotations

from typing import Sequence

from lecture_utils.experiment.conditions import DEFAULT_WIDTHS, MODELS, Condition, expand_grid
from lecture_utils.recipe import RECOMMENDED, recipe_for
from lecture_utils.settings import FULL_09_RESOLUTIONS, lesson_settings

__all__ = ["GPU_ZOO", "GPU_REFERENCE_OUT", "gpu_reference_plan", "gpu_reference_conditions", "plan_seconds",
           "BUDGET_S", "no_cuda_message"]

GPU_REFERENCE_OUT = "data/reference/gpu/gpu-reference.jsonl"
BUDGET_S = 600.0  # 10 minutes on one H100-class GPU
# what the estimate leaves out, per condition (it counts the model's build, cuDNN's autotuning and the
# checkpoints): the runner's extra pass over the augmented validation images and its record (an allowance)
CONDITION_OVERHEAD_S = 1.0
CHEAP_MACS = 100e6  # networks under this many multiply-adds at their resolution get 3 seeds
# lesson -> (network, width): the lesson's network; VGG16 with batch norm (without it, the reference
# runs stayed at chance at the course's rate), WRN-16-4 as the full profile trains it
GPU_ZOO = {"01": ("alexnet", 1.0), "02": ("vgg16_bn", 1.0), "03": ("googlenet", 1.0), "04": ("resnet18", 1.0),
           "05": ("resnext50_32x4d", 1.0), "06": ("wide_resnet16_4", 1.0), "07": ("mobilenet_v1", 0.5),
           "08": ("mobilenet_v2", 0.5)}
ZOO_EPOCHS = 8
SEEDS = (0, 1, 2)
GRID_SUBSET = (200, 100)  # images per class: training (from the rest of the training split), held-out
GRID_EPOCHS = 10


def gpu_reference_plan() -> dict[str, list[Condition]]:
    """``{"zoo": [...], "grid": [...]}``: the conditions of the GPU reference run, the zoo in lesson order."""
    from lecture_utils.experiment.conditions import build_model
    from lecture_utils.profile import conv_linear_macs

    zoo = []
    for lesson, (model, width) in GPU_ZOO.items():
        resolution = lesson_settings(lesson, "full").resolution
        cheap = conv_linear_macs(build_model(model, width, 10), resolution) < CHEAP_MACS
        for seed in SEEDS if cheap else SEEDS[:1]:
            zoo += expand_grid([model], [width], [resolution], ZOO_EPOCHS, "fashion_mnist", seed=seed,
                               augment="none", recipe=recipe_for(model), validation="heldout")
    grid = expand_grid(MODELS, DEFAULT_WIDTHS, FULL_09_RESOLUTIONS, GRID_EPOCHS, "fashion_mnist",
                       subset=GRID_SUBSET, seed=0, augment="light", recipe=RECOMMENDED, validation="heldout")
    return {"zoo": zoo, "grid": grid}


def gpu_reference_conditions() -> list[Condition]:
    """Every condition of :func:`gpu_reference_plan`, the zoo's first."""
    plan = gpu_reference_plan()
    return plan["zoo"] + plan["grid"]


def plan_seconds(conditions: Sequence[Condition], gpu: str = "h100") -> float:
    """Estimated seconds of `conditions` on `gpu`: ``plans.condition_seconds`` each, plus the per-condition allowance."""
    from lecture_utils.experiment.plans import condition_seconds

    return sum(condition_seconds(c, gpu) + CONDITION_OVERHEAD_S for c in conditions)


def no_cuda_message(device: str | None) -> str | None:
    """Why the GPU reference cannot run here (no CUDA, or another device asked for), or None when it can."""
    import torch

    if not torch.cuda.is_available():
        return ("the GPU reference run needs a CUDA GPU (H100 class, about 10 minutes) and none is available here; "
                "nothing was trained. Run `make gpu-reference` on a machine with one.")
    if device is not None and not str(device).startswith("cuda"):
        return f"the GPU reference run trains on CUDA; --device {device} asked for another device. Nothing was trained."
    return None
