"""The NumPy reference against the PyTorch model (every intermediate) and against
PyTorch's stock layers (each block's output and the logits), in both dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numpy_ref
from numpy_ref.config import ModelConfig
from numpy_ref.schema import block_output_names, trace_names
from torch_model.parity import Case, default_cases, run_parity

from conftest import random_checkpoint

DTYPES = ["float32", "float64"]

# SPEC's default and the shapes the issue lists; each with the inputs of default_cases
# (S = 1, S = max_seq_len with B = 3, a short batch of 2).
CONFIGS = {
    "spec default": ModelConfig(vocab_size=64),
    "1 layer": ModelConfig(vocab_size=40, n_layers=1),
    "8 heads": ModelConfig(vocab_size=40, n_heads=8),
    "d_model 32, d_ff 48": ModelConfig(vocab_size=40, d_model=32, d_ff=48),
    "max_seq_len 16": ModelConfig(vocab_size=40, max_seq_len=16),
}


def expected_rows(n_layers):
    """Every trace name against torch, and the block outputs, embed.out and logits against the stock layers."""
    stock = {"embed.out", "logits", *block_output_names(n_layers)}
    rows = []
    for name in trace_names(n_layers):
        rows.append((name, "torch"))
        if name in stock:
            rows.append((name, "torch_stock"))
    return rows


def assert_parity(report, n_layers):
    failures = [f"{r.name} vs {r.against}: rel {r.max_rel} > {r.tol} {r.note}" for r in report.rows if not r.ok]
    assert report.ok, f"first mismatch {report.first_mismatch.name}; " + "; ".join(failures)
    assert [(r.name, r.against) for r in report.rows] == expected_rows(n_layers)


@pytest.mark.parametrize("spec_init_scale", [False, True], ids=["wide embeddings", "spec init scale"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label", list(CONFIGS))
def test_every_intermediate_agrees(label, dtype, spec_init_scale):
    config = CONFIGS[label]
    checkpoint = random_checkpoint(config, seed=7, spec_init_scale=spec_init_scale)
    cases = default_cases(config, seed=3)
    assert {c.ids.shape[1] for c in cases} >= {1, config.max_seq_len}
    assert any(c.ids.shape[0] > 1 for c in cases)
    assert_parity(run_parity(checkpoint, dtype, cases), config.n_layers)


def test_random_weights_make_attention_peaked():
    """The test weights must make a demanding test: attention far from uniform."""
    config = CONFIGS["spec default"]
    model = numpy_ref.Model.from_checkpoint(random_checkpoint(config, seed=7), "float64")
    _, trace = model.run_with_trace(default_cases(config, seed=3)[1].ids)
    weights = trace["layers.0.attention.weights"][:, :, 8:, :]  # rows that see at least 9 positions
    uniform = 1.0 / np.arange(9, config.max_seq_len + 1)
    assert weights.max(axis=-1).mean() > 5 * uniform.mean()


@st.composite
def configs_and_inputs(draw):
    n_heads = draw(st.sampled_from([1, 2, 3, 4, 8]))
    config = ModelConfig(
        vocab_size=draw(st.integers(2, 50)),
        d_model=n_heads * draw(st.integers(1, 8)),
        n_heads=n_heads,
        d_ff=draw(st.integers(1, 40)),
        n_layers=draw(st.integers(1, 3)),
        max_seq_len=draw(st.integers(1, 20)),
    )
    batch = draw(st.integers(1, 3))
    seq_len = draw(st.integers(1, config.max_seq_len))
    seed = draw(st.integers(0, 2**16))
    ids = np.random.default_rng(seed).integers(0, config.vocab_size, size=(batch, seq_len))
    return config, seed, ids


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs_and_inputs(), st.sampled_from(DTYPES))
def test_every_intermediate_agrees_on_drawn_configs(drawn, dtype):
    config, seed, ids = drawn
    report = run_parity(random_checkpoint(config, seed), dtype, [Case("drawn", ids)])
    assert_parity(report, config.n_layers)


@pytest.mark.parametrize("dtype", DTYPES)
def test_checkpoint_under_test_agrees(checkpoint, dtype):
    """The shipped checkpoint, or the one given with pytest --checkpoint."""
    config = checkpoint.config
    assert_parity(run_parity(checkpoint, dtype, default_cases(config, seed=0)), config.n_layers)


def test_a_wrong_step_is_caught_and_named(monkeypatch):
    """Teeth: forget the 1/sqrt(D) scaling in NumPy only; the first mismatch is that step."""
    import numpy_ref.forward as forward

    monkeypatch.setattr(forward, "scale_scores", lambda scores_raw, head_dim: scores_raw)
    config = CONFIGS["spec default"]
    report = run_parity(random_checkpoint(config, 7), "float64", default_cases(config, 3))
    assert not report.ok
    assert report.first_mismatch.name == "layers.0.attention.scores_scaled"
    rows = {(r.name, r.against): r for r in report.rows}
    assert rows[("layers.0.attention.scores_raw", "torch")].ok
    assert not rows[("logits", "torch_stock")].ok


def recording(edit):
    """A NumPy forward whose trace goes through `edit(name, value, trace)` (to drop, add or delay names)."""
    import numpy_ref.forward as reference

    def forward(params, config, ids, trace):
        class Edited:
            def __setitem__(self, name, value):
                edit(name, value, trace)

        return reference.forward(params, config, ids, Edited())

    return forward


def test_a_missing_intermediate_fails_and_the_rest_are_still_compared():
    def drop(name, value, trace):
        if name != "layers.0.attention.v_heads":
            trace[name] = value

    config = CONFIGS["1 layer"]
    report = run_parity(random_checkpoint(config, 7), "float64", default_cases(config, 3), forward=recording(drop))
    failed = [(r.name, r.note) for r in report.rows if not r.ok]
    assert failed == [("layers.0.attention.v_heads", "missing from the NumPy trace")]
    assert [(r.name, r.against) for r in report.rows] == expected_rows(1)


def test_an_extra_or_reordered_intermediate_fails():
    def extra(name, value, trace):
        trace[name] = value
        if name == "layers.0.norm1":
            trace["layers.0.bonus"] = value

    held = {}

    def swap(name, value, trace):  # records k before q
        if name == "layers.0.attention.q":
            held[name] = value
            return
        trace[name] = value
        if name == "layers.0.attention.k":
            trace["layers.0.attention.q"] = held.pop("layers.0.attention.q")

    config = CONFIGS["1 layer"]
    report = run_parity(random_checkpoint(config, 7), "float32", default_cases(config, 3), forward=recording(extra))
    assert [r.name for r in report.rows if not r.ok] == ["layers.0.bonus"]
    report = run_parity(random_checkpoint(config, 7), "float32", default_cases(config, 3), forward=recording(swap))
    # by name every value is right; the order is what is wrong, and it is reported
    assert not report.ok
    assert report.first_mismatch.name == "layers.0.attention.q"
    assert "out of order: NumPy recorded layers.0.attention.k here" in report.first_mismatch.note
    assert {r.name for r in report.rows} == {name for name, _ in expected_rows(1)}
