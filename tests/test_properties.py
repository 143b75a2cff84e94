"""Properties the decoder must have whatever its weights (SPEC "Forward pass")."""

import numpy as np
import pytest

import numpy_ref
from numpy_ref.config import ModelConfig
from numpy_ref.forward import causal_mask, layer_norm, softmax

from conftest import random_checkpoint

CONFIG = ModelConfig(vocab_size=50, max_seq_len=24)


@pytest.fixture(scope="module", params=["float32", "float64"])
def model(request):
    return numpy_ref.Model.from_checkpoint(random_checkpoint(CONFIG, seed=11), request.param)


def test_attention_rows_sum_to_one_and_the_upper_triangle_is_exactly_zero(model, rng):
    _, trace = model.run_with_trace(rng.integers(0, 50, size=(2, 24)))
    for layer in range(CONFIG.n_layers):
        weights = trace[f"layers.{layer}.attention.weights"]  # [B, H, S, S]
        tol = 1e-6 if model.dtype == np.float32 else 1e-14
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=tol)
        above = np.triu(np.ones((24, 24), dtype=bool), k=1)
        assert np.all(weights[..., above] == 0.0)
        assert np.all(weights[..., ~above] > 0.0)


def test_the_mask_is_the_spec_triangle():
    mask = causal_mask(4, -1e9, np.float64)
    expected = np.array([[0, -1e9, -1e9, -1e9], [0, 0, -1e9, -1e9], [0, 0, 0, -1e9], [0, 0, 0, 0]])
    np.testing.assert_array_equal(mask, expected)


def test_changing_a_later_token_never_changes_an_earlier_position(model, rng):
    ids = rng.integers(0, 50, size=(1, 24))
    before = model(ids)
    for position in (0, 5, 23):
        changed = ids.copy()
        changed[0, position] = (changed[0, position] + 1) % 50
        after = model(changed)
        np.testing.assert_array_equal(after[:, :position], before[:, :position])
        assert not np.array_equal(after[:, position], before[:, position])


def test_layer_norm_output_is_standardised_before_its_affine_part(model, rng):
    _, trace = model.run_with_trace(rng.integers(0, 50, size=(3, 24)))
    params = model.params
    for layer in range(CONFIG.n_layers):
        for norm in ("norm1", "norm2"):
            weight, bias = params[f"layers.{layer}.{norm}.weight"], params[f"layers.{layer}.{norm}.bias"]
            standardised = (trace[f"layers.{layer}.{norm}"] - bias) / weight
            residual = trace[f"layers.{layer}.residual{norm[-1]}"]
            variance = residual.astype(np.float64).var(axis=-1)
            tol = 1e-4 if model.dtype == np.float32 else 1e-9
            np.testing.assert_allclose(standardised.mean(axis=-1), 0.0, atol=tol)
            # std is 1 up to eps: sqrt(var / (var + eps)), about 1 - 5e-6 here
            np.testing.assert_allclose(standardised.std(axis=-1), np.sqrt(variance / (variance + CONFIG.ln_eps)), atol=tol)
            assert np.all(np.abs(standardised.std(axis=-1) - 1.0) < 1e-4)


def test_layer_norm_matches_the_formula_with_biased_variance():
    x = np.array([[[1.0, 2.0, 3.0, 6.0]]])
    out = layer_norm(x, np.ones(4), np.zeros(4), eps=0.0)
    # mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5
    np.testing.assert_allclose(out, (x - 3.0) / np.sqrt(3.5))


def test_softmax_of_huge_scores_does_not_overflow():
    out = softmax(np.array([[1000.0, 1001.0, -1e9]]))
    np.testing.assert_allclose(out, [[1 / (1 + np.e), np.e / (1 + np.e), 0.0]])


def test_shapes_of_every_step(model):
    _, trace = model.run_with_trace(np.zeros((3, 7), dtype=np.int64))
    E, H, D, F = 64, 4, 16, 256
    assert trace["embed.tokens"].shape == (3, 7, E)
    assert trace["embed.pos"].shape == (1, 7, E)
    assert trace["layers.0.attention.q_heads"].shape == (3, H, 7, D)
    assert trace["layers.0.attention.scores_raw"].shape == (3, H, 7, 7)
    assert trace["layers.0.attention.mask"].shape == (7, 7)
    assert trace["layers.0.attention.context_merged"].shape == (3, 7, E)
    assert trace["layers.0.feed_forward.hidden"].shape == (3, 7, F)
    assert trace["layers.0.feed_forward.out"].shape == trace["layers.0.norm1"].shape == (3, 7, E)
    assert trace["logits"].shape == (3, 7, 50)
    assert all(value.dtype == model.dtype for value in trace.values())


def test_the_trace_does_not_change_the_logits(model, rng):
    ids = rng.integers(0, 50, size=(2, 9))
    logits, trace = model.run_with_trace(ids)
    np.testing.assert_array_equal(model(ids), logits)
    np.testing.assert_array_equal(trace["logits"], logits)


def test_the_pad_row_is_a_plain_embedding_row(model):
    """The pad id only stops the gradient in training; its forward row is not zero."""
    _, trace = model.run_with_trace(np.array([[0]]))
    assert np.any(trace["embed.tokens"] != 0)


def test_positions_are_sliced_not_broadcast_whole(model):
    """S = 1 takes position 0 only (the original added all 64 rows, which broadcast wrongly)."""
    _, trace = model.run_with_trace(np.array([[3]]))
    np.testing.assert_array_equal(trace["embed.pos"], model.params["pos_encoding"][:, :1])
    np.testing.assert_array_equal(trace["embed.out"][0, 0], model.params["embed.weight"][3] + model.params["pos_encoding"][0, 0])
