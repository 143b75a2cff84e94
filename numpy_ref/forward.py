"""The forward pass of the decoder, one small function per step (SPEC "Forward pass").

Read this file top to bottom: it is the model. Shapes use
    B batch, S sequence length (S <= T), E d_model, H n_heads, D = E / H head_dim,
    F d_ff, V vocab_size, T max_seq_len.
Every step takes and returns plain NumPy arrays. The function `forward` at the
end strings the steps together and, when asked, records each intermediate under
its SPEC trace name; the recording never changes a value.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .config import ModelConfig


# ---------------------------------------------------------------------------
# Step 1 and 2: embedding plus positional encoding


def embed_tokens(embed_weight: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Look up one row of the embedding per token id (a plain lookup; row pad_id is not zero)."""
    # embed_weight: [V, E], ids: [B, S]
    return embed_weight[ids]  # [B, S, E]


def positions(pos_encoding: np.ndarray, seq_len: int) -> np.ndarray:
    """The first S rows of the positional parameter (the notebook's slice)."""
    # pos_encoding: [1, T, E]
    return pos_encoding[:, :seq_len, :]  # [1, S, E]


# ---------------------------------------------------------------------------
# The building blocks every layer uses


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x @ W^T + b, with W stored as [out, in] (the PyTorch convention)."""
    # x: [..., in], weight: [out, in], bias: [out]
    return x @ weight.T + bias  # [..., out]


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """Normalise over the last axis with the biased variance, then scale and shift."""
    # x: [B, S, E]
    mean = x.mean(axis=-1, keepdims=True)  # [B, S, 1]
    centered = x - mean  # [B, S, E]
    variance = (centered * centered).mean(axis=-1, keepdims=True)  # [B, S, 1], divides by E (biased)
    normalized = centered / np.sqrt(variance + eps)  # [B, S, E]
    return normalized * weight + bias  # [B, S, E]


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; the row maximum is subtracted first so exp cannot overflow."""
    # scores: [..., S]
    shifted = scores - scores.max(axis=-1, keepdims=True)  # [..., S], every row's largest entry is 0
    exps = np.exp(shifted)  # [..., S]
    return exps / exps.sum(axis=-1, keepdims=True)  # [..., S], each row sums to 1


# ---------------------------------------------------------------------------
# Step 3a: causal multi-head self-attention


def split_heads(x: np.ndarray, n_heads: int) -> np.ndarray:
    """Give each head its own D columns: reshape to [B, S, H, D], then put H before S."""
    batch, seq_len, d_model = x.shape  # [B, S, E]
    per_head = x.reshape(batch, seq_len, n_heads, d_model // n_heads)  # [B, S, H, D]
    return per_head.transpose(0, 2, 1, 3)  # [B, H, S, D]


def attention_scores(q_heads: np.ndarray, k_heads: np.ndarray) -> np.ndarray:
    """Every query against every key: q @ k^T."""
    # q_heads, k_heads: [B, H, S, D]
    k_transposed = k_heads.transpose(0, 1, 3, 2)  # [B, H, D, S]
    return q_heads @ k_transposed  # [B, H, S, S]; row i = query i, column j = key j


def scale_scores(scores_raw: np.ndarray, head_dim: int) -> np.ndarray:
    """Divide by sqrt(D) so that the scores' spread does not grow with the head width."""
    return scores_raw / math.sqrt(head_dim)  # [B, H, S, S]; a Python float keeps the array's dtype


def causal_mask(seq_len: int, mask_value: float, dtype) -> np.ndarray:
    """mask_value above the diagonal, 0 on and below it: position i may see positions 0..i."""
    above_diagonal = np.triu(np.ones((seq_len, seq_len), dtype=dtype), k=1)  # [S, S], 1 where j > i
    return above_diagonal * np.asarray(mask_value, dtype=dtype)  # [S, S]


def apply_mask(scores_scaled: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """ADD the mask (SPEC: -1e9 is added, not -inf substituted); it broadcasts over B and H."""
    # scores_scaled: [B, H, S, S], mask: [S, S]
    return scores_scaled + mask  # [B, H, S, S]


def merge_heads(context: np.ndarray) -> np.ndarray:
    """Undo split_heads: put S back before H, then lay the heads side by side."""
    batch, n_heads, seq_len, head_dim = context.shape  # [B, H, S, D]
    per_position = context.transpose(0, 2, 1, 3)  # [B, S, H, D]
    return per_position.reshape(batch, seq_len, n_heads * head_dim)  # [B, S, E]


def self_attention(x: np.ndarray, p: dict, config: ModelConfig, record) -> np.ndarray:
    """Causal self-attention of one block. `p` holds the block's parameters by their
    names inside the block (e.g. "attention.q.weight"); `record(name, array)` keeps
    an intermediate under "attention.<name>"."""
    # x: [B, S, E]
    q = linear(x, p["attention.q.weight"], p["attention.q.bias"])  # [B, S, E]
    k = linear(x, p["attention.k.weight"], p["attention.k.bias"])  # [B, S, E]
    v = linear(x, p["attention.v.weight"], p["attention.v.bias"])  # [B, S, E]
    record("attention.q", q)
    record("attention.k", k)
    record("attention.v", v)

    q_heads = split_heads(q, config.n_heads)  # [B, H, S, D]
    k_heads = split_heads(k, config.n_heads)  # [B, H, S, D]
    v_heads = split_heads(v, config.n_heads)  # [B, H, S, D]
    record("attention.q_heads", q_heads)
    record("attention.k_heads", k_heads)
    record("attention.v_heads", v_heads)

    scores_raw = attention_scores(q_heads, k_heads)  # [B, H, S, S]
    scores_scaled = scale_scores(scores_raw, config.head_dim)  # [B, H, S, S]
    mask = causal_mask(x.shape[1], config.mask_value, x.dtype)  # [S, S]
    scores_masked = apply_mask(scores_scaled, mask)  # [B, H, S, S]
    weights = softmax(scores_masked)  # [B, H, S, S]; upper triangle exp(-1e9 - max) = 0
    record("attention.scores_raw", scores_raw)
    record("attention.scores_scaled", scores_scaled)
    record("attention.mask", mask)
    record("attention.scores_masked", scores_masked)
    record("attention.weights", weights)

    context = weights @ v_heads  # [B, H, S, D]; each query's weighted mean of the values
    context_merged = merge_heads(context)  # [B, S, E]
    out = linear(context_merged, p["attention.out.weight"], p["attention.out.bias"])  # [B, S, E]
    record("attention.context", context)
    record("attention.context_merged", context_merged)
    record("attention.out", out)
    return out


# ---------------------------------------------------------------------------
# Step 3b: the position-wise feed-forward, E -> F -> E


def feed_forward(x: np.ndarray, p: dict, record) -> np.ndarray:
    # x: [B, S, E]
    hidden_pre = linear(x, p["feed_forward.linear1.weight"], p["feed_forward.linear1.bias"])  # [B, S, F]
    hidden = relu(hidden_pre)  # [B, S, F]
    out = linear(hidden, p["feed_forward.linear2.weight"], p["feed_forward.linear2.bias"])  # [B, S, E]
    record("feed_forward.hidden_pre", hidden_pre)
    record("feed_forward.hidden", hidden)
    record("feed_forward.out", out)
    return out


# ---------------------------------------------------------------------------
# Step 3: one decoder block (post-norm: add the residual, then normalise)


def decoder_block(x: np.ndarray, p: dict, config: ModelConfig, record) -> np.ndarray:
    # x: [B, S, E]
    attn_out = self_attention(x, p, config, record)  # [B, S, E]
    residual1 = x + attn_out  # [B, S, E]
    x = layer_norm(residual1, p["norm1.weight"], p["norm1.bias"], config.ln_eps)  # [B, S, E]
    record("residual1", residual1)
    record("norm1", x)

    ff = feed_forward(x, p, record)  # [B, S, E]
    residual2 = x + ff  # [B, S, E]
    x = layer_norm(residual2, p["norm2.weight"], p["norm2.bias"], config.ln_eps)  # [B, S, E]
    record("residual2", residual2)
    record("norm2", x)
    return x


def block_params(params: dict, layer: int) -> dict:
    """The parameters of block `layer`, keyed by their names inside the block."""
    prefix = f"layers.{layer}."
    return {name[len(prefix):]: value for name, value in params.items() if name.startswith(prefix)}


# ---------------------------------------------------------------------------
# The whole model


def forward(params: dict, config: ModelConfig, ids: np.ndarray, trace: OrderedDict | None = None) -> np.ndarray:
    """ids [B, S] -> logits [B, S, V]. Pass an OrderedDict as `trace` to keep every
    intermediate under its SPEC name, in execution order. `ids` must already be
    checked (Model.__call__ does that): integers in [0, V), 1 <= S <= T."""

    def recorder(prefix: str):
        if trace is None:
            return lambda name, value: None
        return lambda name, value: trace.__setitem__(prefix + name, value)

    record = recorder("")
    seq_len = ids.shape[1]

    tokens = embed_tokens(params["embed.weight"], ids)  # [B, S, E]
    pos = positions(params["pos_encoding"], seq_len)  # [1, S, E]
    x = tokens + pos  # [B, S, E]; the one row of positions broadcasts over the batch
    record("embed.tokens", tokens)
    record("embed.pos", pos)
    record("embed.out", x)

    for layer in range(config.n_layers):
        x = decoder_block(x, block_params(params, layer), config, recorder(f"layers.{layer}."))  # [B, S, E]

    logits = linear(x, params["final_layer.weight"], params["final_layer.bias"])  # [B, S, V]
    record("logits", logits)
    return logits
