"""The one naming of the model: parameter names and shapes, and trace names.

SPEC "Canonical names" defines the names; SPEC "The original checkpoint file"
defines the order. They coincide: `parameter_shapes` lists the parameters in
exactly the order in which the original program's file stores them, so the
i-th tensor of that file is the i-th name here. The NumPy model, the PyTorch
model, the converters and the tests all take names, shapes and order from here.
"""

from __future__ import annotations

from .config import ModelConfig

# Per block, in the order of the Haskell record fields (SPEC item 3 of the
# original file). Shapes use E = d_model and F = d_ff.
BLOCK_PARAMETERS = (
    ("attention.q.weight", ("E", "E")),
    ("attention.q.bias", ("E",)),
    ("attention.k.weight", ("E", "E")),
    ("attention.k.bias", ("E",)),
    ("attention.v.weight", ("E", "E")),
    ("attention.v.bias", ("E",)),
    ("attention.out.weight", ("E", "E")),
    ("attention.out.bias", ("E",)),
    ("norm1.weight", ("E",)),
    ("norm1.bias", ("E",)),
    ("feed_forward.linear1.weight", ("F", "E")),
    ("feed_forward.linear1.bias", ("F",)),
    ("feed_forward.linear2.weight", ("E", "F")),
    ("feed_forward.linear2.bias", ("E",)),
    ("norm2.weight", ("E",)),
    ("norm2.bias", ("E",)),
)

# Before the blocks, and after them (V = vocab_size, T = max_seq_len).
HEAD_PARAMETERS = (
    ("embed.weight", ("V", "E")),
    ("pos_encoding", (1, "T", "E")),
)
TAIL_PARAMETERS = (
    ("final_layer.weight", ("V", "E")),
    ("final_layer.bias", ("V",)),
)

# The intermediates a block records, in execution order (SPEC "Canonical names").
ATTENTION_TRACE = (
    "q", "k", "v", "q_heads", "k_heads", "v_heads", "scores_raw", "scores_scaled",
    "mask", "scores_masked", "weights", "context", "context_merged", "out",
)
BLOCK_TRACE = (
    "residual1", "norm1", "feed_forward.hidden_pre", "feed_forward.hidden",
    "feed_forward.out", "residual2", "norm2",
)


def block_prefix(layer: int) -> str:
    return f"layers.{layer}."


def _resolve(symbolic_shape, sizes) -> tuple:
    return tuple(sizes[dim] if isinstance(dim, str) else dim for dim in symbolic_shape)


def parameter_shapes(config: ModelConfig) -> dict[str, tuple]:
    """Every canonical parameter name and its shape, in the original file's order."""
    sizes = {"V": config.vocab_size, "E": config.d_model, "F": config.d_ff, "T": config.max_seq_len}
    shapes = {name: _resolve(shape, sizes) for name, shape in HEAD_PARAMETERS}
    for layer in range(config.n_layers):
        for name, shape in BLOCK_PARAMETERS:
            shapes[block_prefix(layer) + name] = _resolve(shape, sizes)
    shapes.update({name: _resolve(shape, sizes) for name, shape in TAIL_PARAMETERS})
    return shapes


def parameter_count(n_layers: int) -> int:
    """How many tensors a model with n_layers blocks has: 2 + 16 L + 2."""
    return len(HEAD_PARAMETERS) + len(BLOCK_PARAMETERS) * n_layers + len(TAIL_PARAMETERS)


def trace_names(n_layers: int) -> list[str]:
    """The names of the forward pass's intermediates, in execution order."""
    names = ["embed.tokens", "embed.pos", "embed.out"]
    for layer in range(n_layers):
        prefix = block_prefix(layer)
        names += [prefix + "attention." + step for step in ATTENTION_TRACE]
        names += [prefix + step for step in BLOCK_TRACE]
    names.append("logits")
    return names


def block_output_names(n_layers: int) -> list[str]:
    """The trace names at which a whole block's output can be compared."""
    return [block_prefix(layer) + "norm2" for layer in range(n_layers)]
