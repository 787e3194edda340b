"""The MobileNetV2 Figure-1 experiment: what ReLU loses, by embedding dimension."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from lecture_utils import manifold

SEEDS = range(5)


def _mean_over_seeds(measure, n, activation="relu"):
    points = manifold.make_spiral()
    return np.mean([getattr(manifold.embed_and_recover(points, n, activation, s), measure) for s in SEEDS])


def test_spiral_is_centred_with_unit_radius():
    points = manifold.make_spiral(num_points=500)
    assert points.shape == (500, 2)
    np.testing.assert_allclose(points[0], [0.0, 0.0])
    assert np.linalg.norm(points, axis=1).max() == pytest.approx(1.0)


def test_noisy_spiral_is_seeded():
    a = manifold.make_spiral(noise=0.05, seed=3)
    b = manifold.make_spiral(noise=0.05, seed=3)
    c = manifold.make_spiral(noise=0.05, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_embedding_matrix_is_seeded_and_n_by_2():
    t = manifold.random_embedding(15, seed=7)
    assert t.shape == (15, 2)
    np.testing.assert_array_equal(t, manifold.random_embedding(15, seed=7))
    assert not np.allclose(t, manifold.random_embedding(15, seed=8))
    np.testing.assert_array_equal(t, manifold.random_embedding(np.int64(15), seed=7))  # n from np.arange


def test_without_activation_pinv_recovers_the_spiral_exactly():
    points = manifold.make_spiral()
    for n in manifold.DIMENSIONS:
        result = manifold.embed_and_recover(points, n, "none")
        np.testing.assert_allclose(result.recovered, points, atol=1e-10)
        assert result.projection_error < 1e-10
        assert result.unexplained_variance < 1e-10


def test_relu_information_loss_falls_as_n_grows():
    # 1 - R^2 of the best linear read-out, averaged over seeds: large at n = 2, 3, about 0 from n = 15
    losses = [_mean_over_seeds("unexplained_variance", n) for n in manifold.DIMENSIONS]
    assert all(a > b for a, b in zip(losses, losses[1:-1]))  # 2 > 3 > 5 > 15
    assert losses[-1] <= losses[-2]
    assert losses[0] > 0.15 and losses[1] > 0.1
    assert losses[3] < 0.01 and losses[4] < 0.01


def test_relu_pinv_projection_error_does_not_fall_with_n():
    # ReLU(z) = z/2 + |z|/2 and T^+ nearly cancels the |z| half, so X_hat -> X/2: the mean distance
    # tends to half the mean radius, 0.25 for a unit spiral sampled evenly along its radius.
    for n in (15, 30, 100):
        assert _mean_over_seeds("projection_error", n) == pytest.approx(0.25, abs=0.04)


def test_relu_recovers_about_half_the_spiral_at_large_n():
    points = manifold.make_spiral()
    recovered = manifold.embed_and_recover(points, 400, "relu", seed=0).recovered
    np.testing.assert_allclose(recovered, points / 2, atol=0.1)


def test_relu6_equals_relu_on_a_unit_spiral_and_clips_on_a_large_one():
    unit = manifold.make_spiral()
    relu = manifold.embed_and_recover(unit, 5, "relu").activated
    relu6 = manifold.embed_and_recover(unit, 5, "relu6").activated
    np.testing.assert_array_equal(relu, relu6)
    large = manifold.embed_and_recover(manifold.make_spiral(scale=10.0), 5, "relu6").activated
    assert large.max() == 6.0


def test_leaky_relu_keeps_negative_inputs_scaled():
    z = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(manifold.activate(z, "leaky_relu"), [-0.02, 0.0, 3.0])
    np.testing.assert_allclose(manifold.activate(z, "leaky_relu", negative_slope=0.2), [-0.4, 0.0, 3.0])


def test_measure_table_has_one_row_per_activation_and_n():
    rows = manifold.measure_table(dims=(2, 30), activations=("relu", "none"), seeds=(0, 1))
    assert [(r["activation"], r["n"]) for r in rows] == [("relu", 2), ("relu", 30), ("none", 2), ("none", 30)]
    assert rows[0]["unexplained_variance"] > rows[1]["unexplained_variance"]


def test_plot_manifold_draws_input_plus_one_panel_per_n():
    points = manifold.make_spiral(num_points=200)
    results = manifold.manifold_experiment(points)
    fig = manifold.plot_manifold(points, results)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1 + len(manifold.DIMENSIONS)
    assert manifold.plot_manifold(points, results, recovery="readout").axes[1].get_title().startswith("n = 2")


def test_plot_activation_grid_is_activations_by_input_plus_n():
    fig = manifold.plot_activation_grid(manifold.make_spiral(num_points=200), dims=(2, 15))
    assert len(fig.axes) == len(manifold.ACTIVATIONS) * 3


@pytest.mark.parametrize(
    ("func", "kwargs", "message"),
    [
        (manifold.activate, {"z": np.zeros(3), "activation": "tanh"}, "activation must be one of relu, relu6"),
        (manifold.random_embedding, {"n": 0}, "n must be an integer >= 1, got 0"),
        (manifold.embed_and_recover, {"points": manifold.make_spiral(), "n": 2.0}, "n must be an integer >= 1"),
        (manifold.make_spiral, {"num_points": 2}, "num_points must be an integer >= 3, got 2"),
        (manifold.make_spiral, {"scale": -1.0}, "turns and scale must be > 0 and noise >= 0"),
        (manifold.embed_and_recover, {"points": np.zeros((10, 3)), "n": 5}, r"points must be an \(N, 2\) array"),
        (manifold.plot_manifold, {"points": manifold.make_spiral(50), "results": []}, "results must hold at least"),
        (manifold.plot_activation_grid, {"recovery": "inverse"}, "recovery must be one of pinv, readout"),
    ],
)
def test_bad_arguments_raise_value_error_saying_what_is_allowed(func, kwargs, message):
    with pytest.raises(ValueError, match=message):
        func(**kwargs)
