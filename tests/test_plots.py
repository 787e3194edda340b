"""Tests of lecture_utils.plots (Agg backend: nothing is shown)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lecture_utils.plots import (  # noqa: E402
    format_count,
    pareto_front,
    plot_acc_vs_macs,
    plot_bars,
    plot_grid,
    plot_history,
    plot_lines,
)

HISTORY = {"train_loss": [2.0, 1.0, 0.5], "train_acc": [0.2, 0.5, 0.7],
           "val_loss": [2.1, 1.4, 1.0], "val_acc": [0.15, 0.4, 0.6]}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_history_draws_train_and_val_loss_and_accuracy():
    fig = plot_history(HISTORY)
    assert isinstance(fig, Figure)
    ax_loss, ax_acc = fig.axes
    assert [list(line.get_ydata()) for line in ax_loss.lines] == [HISTORY["train_loss"], HISTORY["val_loss"]]
    assert [list(line.get_ydata()) for line in ax_acc.lines] == [HISTORY["train_acc"], HISTORY["val_acc"]]
    assert list(ax_loss.lines[0].get_xdata()) == [1, 2, 3]


def test_plot_history_accepts_several_named_histories_and_the_course_format():
    course = {"loss": [(2.0, 2.1), (1.0, 1.4)], "accuracy": [(0.2, 0.15), (0.5, 0.4)]}
    fig = plot_history({"ours": HISTORY, "course": course})
    ax_loss, _ = fig.axes
    assert len(ax_loss.lines) == 4
    assert list(ax_loss.lines[3].get_ydata()) == [2.1, 1.4]
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert labels == ["ours train", "ours val", "course train", "course val"]


def test_plot_history_rejects_a_dict_without_history_keys():
    with pytest.raises(ValueError, match="train_loss"):
        plot_history({"loss": [1.0]})


def test_plot_history_chance_line_sits_at_one_over_num_classes():
    fig = plot_history(HISTORY, num_classes=10)
    ax_loss, ax_acc = fig.axes
    chance = [line for line in ax_acc.lines if line.get_label() == "chance (1/10)"]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == [0.1, 0.1]
    uniform = [line for line in ax_loss.lines if line.get_label().startswith("uniform guess")]
    assert len(uniform) == 1 and uniform[0].get_ydata()[0] == pytest.approx(2.302585, abs=1e-6)


def test_plot_history_names_the_train_loss_when_asked():
    fig = plot_history(HISTORY, train_loss_label="train (main + 0.3 aux)")
    ax_loss, ax_acc = fig.axes
    assert [t.get_text() for t in ax_loss.get_legend().get_texts()] == ["train (main + 0.3 aux)", "val"]
    assert [t.get_text() for t in ax_acc.get_legend().get_texts()] == ["train", "val"]


@pytest.mark.parametrize("bad", [1, 0, 2.5, True])
def test_plot_history_rejects_a_num_classes_below_two_or_not_int(bad):
    with pytest.raises(ValueError, match="num_classes"):
        plot_history(HISTORY, num_classes=bad)


def test_plot_bars_log_scale_is_named_on_the_y_axis():
    fig = plot_bars({"conv1": {"parameters": 23_296}, "fc6": {"parameters": 37_752_832}}, log=True,
                    xlabel="layer")
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "parameters (log scale)"
    assert ax.get_xlabel() == "layer"


def test_plot_lines_draws_series_as_lines_and_reference_as_unconnected_points():
    fig = plot_lines({"ours": ([1, 4, 8], [0.1, 1.0, 13.0])}, "layers", "gradient norm",
                     reference={"paper": ([1, 8], [0.2, 10.0])}, log_y=True)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"
    assert ax.get_ylabel() == "gradient norm (log scale)"
    ours, paper = ax.lines
    assert list(ours.get_ydata()) == [0.1, 1.0, 13.0] and ours.get_linestyle() == "-"
    assert list(paper.get_xdata()) == [1.0, 8.0] and paper.get_linestyle() == "None"


def test_plot_lines_rejects_pairs_of_unequal_length():
    with pytest.raises(ValueError, match="equal length"):
        plot_lines({"a": ([1, 2], [1.0])}, "x", "y")


def test_plot_bars_one_panel_per_metric_with_the_given_heights():
    data = {"resnet18": {"params": 11_689_512, "macs": 1_819_066_368},
            "mobilenet_v2": {"params": 3_504_872, "macs": 300_774_272}}
    fig = plot_bars(data, log=True)
    assert [ax.get_title() for ax in fig.axes] == ["params", "macs"]
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [11_689_512, 3_504_872]
    assert fig.axes[1].get_yscale() == "log"


def test_plot_bars_grouped_draws_one_bar_per_model_and_group():
    data = {"W100%": {"v1": {"params": 4.2e6}, "v2": {"params": 3.5e6}},
            "W50%": {"v1": {"params": 1.3e6}, "v2": {"params": 1.97e6}}}
    fig = plot_bars(data)
    assert len(fig.axes[0].patches) == 4
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["W100%", "W50%"]


def test_plot_bars_rejects_unknown_metric():
    with pytest.raises(ValueError, match="available: params"):
        plot_bars({"a": {"params": 1}}, metrics=["flops"])


def test_format_count_uses_k_m_g():
    assert format_count(3_504_872) == "3.50M"
    assert format_count(300_774_272) == "300.8M"
    assert format_count(1_500_000_000) == "1.50G"
    assert format_count(512) == "512"


def test_pareto_front_keeps_only_undominated_points():
    # (cost, acc): (3, 0.6) is beaten by (2, 0.7); (5, 0.7) by (2, 0.7)
    points = [(1, 0.5), (2, 0.7), (3, 0.6), (4, 0.8), (5, 0.7)]
    assert pareto_front(points) == [0, 1, 3]


def test_plot_acc_vs_macs_log_x_labels_and_front_per_group():
    results = {"v1": [("W100%", 5.7e8, 0.80), ("W50%", 1.5e8, 0.70), ("W75%", 3.3e8, 0.65)],
               "v2": [("W100%", 3.0e8, 0.82), ("W50%", 1.0e8, 0.75)]}
    fig = plot_acc_vs_macs(results)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert {t.get_text() for t in ax.texts} == {"W100%", "W50%", "W75%"}
    assert len(ax.texts) == 5
    fronts = [list(zip(line.get_xdata(), line.get_ydata())) for line in ax.lines]
    assert fronts[0] == [(1.5e8, 0.70), (5.7e8, 0.80)]  # W75% is dominated by W50%
    assert fronts[1] == [(1.0e8, 0.75), (3.0e8, 0.82)]


def test_plot_acc_vs_macs_reads_records():
    rows = [{"model": "v2", "width": 1.0, "resolution": 32, "macs": 2e7, "val_acc": 0.5},
            {"model": "v2", "width": 0.5, "resolution": 32, "macs": 6e6, "val_acc": 0.4}]
    fig = plot_acc_vs_macs(rows, label=["width", "resolution"])
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["0.5 32", "1.0 32"]


def test_plot_grid_annotates_every_cell_with_its_value():
    grid = {"W100%": {"R224": 0.81, "R96": 0.70}, "W50%": {"R224": 0.75, "R96": 0.61}}
    fig = plot_grid(grid, fmt="{:.2f}")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["0.81", "0.70", "0.75", "0.61"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["R224", "R96"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["W100%", "W50%"]
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.81, 0.70], [0.75, 0.61]])


def test_plot_grid_several_panels_share_one_colour_scale():
    grids = {"v1": {"W1": {"R32": 0.2}}, "v2": {"W1": {"R32": 0.8}}}
    fig = plot_grid(grids)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 2
    assert {im.get_clim() for im in images} == {(0.2, 0.8)}


def test_plot_grid_array_needs_matching_labels():
    with pytest.raises(ValueError, match="labels"):
        plot_grid(np.zeros((2, 3)), row_labels=["a"], col_labels=["x", "y", "z"])


def test_acc_vs_macs_in_panels_gives_each_group_its_axes_and_all_fronts():
    data = {"a": [("a1", 1e6, 0.5), ("a2", 2e6, 0.7)], "b": [("b1", 1e6, 0.6), ("b2", 3e6, 0.65)]}
    fig = plot_acc_vs_macs(data, panels=True)
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    assert [len(ax.collections) for ax in fig.axes] == [1, 1]  # each panel scatters its own group
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]  # and draws both groups' fronts
    assert {t.get_text() for t in fig.axes[1].texts} == {"b1", "b2"}


def test_a_baseline_is_drawn_as_a_labelled_line_on_the_accuracy_axes():
    from lecture_utils.plots import plot_acc_vs_macs, plot_history

    history = {"train_loss": [1.0, 0.5], "train_acc": [0.5, 0.7], "val_loss": [1.1, 0.6], "val_acc": [0.4, 0.6]}
    fig = plot_history(history, baseline=("linear baseline", 0.8465))
    acc_axes = fig.axes[1]
    line = [ln for ln in acc_axes.get_lines() if ln.get_label().startswith("linear baseline")]
    assert len(line) == 1 and list(line[0].get_ydata()) == [0.8465, 0.8465]
    assert line[0].get_label() == "linear baseline (0.847)"
    fig = plot_acc_vs_macs({"zoo": [("a", 1e6, 0.9), ("b", 1e8, 0.8)]}, baseline=("linear baseline", 0.8465))
    assert any(ln.get_label() == "linear baseline (0.847)" for ln in fig.axes[0].get_lines())


def test_plot_differences_colours_a_bar_only_where_its_95_percent_interval_excludes_zero():
    from matplotlib.colors import to_rgba

    from lecture_utils.plots import plot_differences
    from lecture_utils.experiment.results import Comparison

    # +6.9, +1.6, +8.0 points: beyond 2 SE, inside the 95 % interval of 3 seeds; a clear drop beside it
    loose = Comparison.of("proj", "base", [0.069, 0.016, 0.080])
    clear = Comparison.of("leaky", "base", [-0.30, -0.32, -0.31])
    fig = plot_differences({"held-out": [loose, clear]})
    bars = [p for p in fig.axes[0].patches]
    assert bars[0].get_facecolor() == to_rgba("0.6") and bars[1].get_facecolor() == to_rgba("C3")
