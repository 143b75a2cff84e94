"""The fast NumPy path beside the reference gives the reference's logits."""

import numpy as np
import pytest

import numpy_ref
from numpy_ref.config import ModelConfig
from numpy_ref.fast import FastModel
from numpy_ref.parity import compare_arrays, tolerance_for

from conftest import random_checkpoint


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", [
    ModelConfig(vocab_size=64), ModelConfig(vocab_size=30, n_layers=1, n_heads=8, d_model=32, d_ff=48, max_seq_len=16),
], ids=["spec default", "small"])
def test_fast_path_matches_the_reference(config, dtype):
    model = numpy_ref.Model.from_checkpoint(random_checkpoint(config, seed=3), dtype)
    fast = FastModel(model)
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (1, 5), (3, config.max_seq_len), (2, 7)]:
        ids = rng.integers(0, config.vocab_size, size=shape)
        for _ in range(2):  # the second call reuses the cached mask
            expected = model(ids)
            row = compare_arrays("logits", fast(ids), expected, tolerance_for("logits", dtype))
            assert row.ok, (shape, row)


def test_fast_path_checks_its_input():
    model = numpy_ref.Model.from_checkpoint(random_checkpoint(ModelConfig(vocab_size=10, max_seq_len=4)), "float32")
    with pytest.raises(numpy_ref.InputError):
        FastModel(model)(np.zeros((1, 5), dtype=int))
