"""Seeded random weights for tests and for checking the machinery without training.

The scales are chosen so that the model is a demanding test, not an easy one:
q and k are large enough that the attention weights are far from uniform, the
LayerNorm affine parameters are not the identity, and every bias is non-zero.
"""

from __future__ import annotations

import math

import numpy as np

from .config import ModelConfig
from .schema import parameter_shapes
from .vocab import NEWLINE_WORD, PAD_WORD

# Words of SPEC's examples, so that its prompts work on a random checkpoint too.
EXAMPLE_WORDS = [NEWLINE_WORD, "if", "else", "endif", "eval", "callp", "c", "dow", "enddo", "return"]


def random_vocab(vocab_size: int) -> list[str]:
    words = [PAD_WORD] + EXAMPLE_WORDS
    words += [f"word{i}" for i in range(len(words), vocab_size)]
    return words[:vocab_size]


def _std(name: str, config: ModelConfig) -> float:
    E, F = config.d_model, config.d_ff
    if name == "embed.weight":
        return 1.0
    if name == "pos_encoding":
        return 0.5
    if name.endswith((".q.weight", ".k.weight")):
        return 1.5 / math.sqrt(E)  # scaled scores with a spread of about 2: peaked attention
    if name.endswith("linear1.weight"):
        return math.sqrt(2.0 / E)
    if name.endswith("linear2.weight"):
        return 1.0 / math.sqrt(F)
    if name.endswith(".weight") and ".norm" not in name:
        return 1.0 / math.sqrt(E)  # v, out, final_layer
    return 0.1  # biases, and the deviation of LayerNorm weights from 1


def random_params(config: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """float32 weights for every canonical parameter, the same for the same seed."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in parameter_shapes(config).items():
        values = rng.standard_normal(shape) * _std(name, config)
        if "norm" in name and name.endswith(".weight"):
            values = values + 1.0
        params[name] = values.astype(np.float32)
    return params
