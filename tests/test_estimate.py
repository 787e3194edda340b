"""The GPU time estimate: its counts against outside references, and its arithmetic."""

from __future__ import annotations

import pytest

from lecture_utils.estimate import GPUS, TrainingCost, estimate_seconds, format_minutes, training_cost
from lecture_utils.models import create_model


def test_resnet50_costs_its_published_4_1_gmacs():
    # torchvision's ResNet-50 at 224 px: 4.09 G multiply-adds (its model card lists 4.09 GFLOPS as MACs)
    cost = training_cost(create_model("resnet50", num_classes=1000), 224)
    assert cost.macs == pytest.approx(4.09e9, rel=0.005)
    assert cost.layers == 54  # 53 convolutions and the classifier


def test_resnet50_on_a_t4_trains_at_the_published_rate():
    # the method's anchor: NVIDIA's T4 inference (1,198 img/s) over the V100's inference/training ratio (2.8)
    cost = training_cost(create_model("resnet50", num_classes=1000), 224)
    seconds = estimate_seconds(cost, 1198 * 256, 0, 1, 256, "t4")
    assert 1198 * 256 / seconds == pytest.approx(1198 / 2.8, rel=0.1)


def test_memory_bound_network_is_timed_by_its_activations():
    cheap = TrainingCost(macs=1_000, activations=10_000_000, layers=0)
    seconds = estimate_seconds(cheap, 1, 0, 1, 1, "t4")
    assert seconds == pytest.approx(6 * 10_000_000 * 2 / GPUS["t4"].bandwidth_bytes_per_s)


def test_epochs_scale_the_estimate_linearly():
    cost = TrainingCost(macs=10**9, activations=10**6, layers=20)
    one = estimate_seconds(cost, 60000, 10000, 1, 128)
    assert estimate_seconds(cost, 60000, 10000, 7, 128) == pytest.approx(7 * one)


def test_unknown_gpu_lists_the_known_ones():
    with pytest.raises(ValueError, match="t4, a100, h100"):
        estimate_seconds(TrainingCost(1, 1, 1), 1, 1, 1, 1, "k80")


def test_bad_resolution_is_refused():
    with pytest.raises(ValueError, match="positive integer"):
        training_cost(create_model("resnet18", num_classes=10), 0)


def test_minutes_and_hours():
    assert format_minutes(150) == "2.5 min"
    assert format_minutes(3 * 3600) == "3.0 h"
