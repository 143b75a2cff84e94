"""The backward pass: the gradient of SPEC's loss with respect to every parameter and
every intermediate, one small function per step (SPEC "Loss and training of the original").

Read it beside forward.py: each `<step>_backward` here undoes one step there, and
`backward` at the end runs them in reverse order: the loss, the unembedding, each
block from the last to the first, the embedding. Shapes use the
letters of forward.py (B batch, S sequence, E d_model, H heads, D = E / H, F d_ff,
V vocab, T max_seq_len). `d_<name>` is the gradient of the loss with respect to
<name>: it always has <name>'s shape. Each `<step>_backward` takes the gradient
of the step's output and the forward values it needs, and returns the gradients
of the step's inputs and parameters.

The forward values come from the forward's trace (`forward(..., trace)`): nothing
is recomputed except two things the trace does not hold, the softmax of the
logits (inside the loss) and each LayerNorm's row statistics (mean and 1/std,
from its recorded input).

Where one value feeds several steps (x feeds q, k, v and the residual; norm1
feeds the FFN and the next residual) its gradient is the SUM of what each use
sends back: that is the chain rule, and the code adds those terms explicitly.

`loss_and_gradients` at the end runs the forward with a trace and the backward,
and returns the loss, the gradient of every canonical parameter, and the
gradient at every trace name (in reverse execution order: the backward's order).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .config import ModelConfig
from .errors import InputError
from .forward import block_params, forward, merge_heads, softmax, split_heads
from .schema import parameter_shapes, trace_names


# ---------------------------------------------------------------------------
# The loss: mean cross-entropy over the positions whose target is not the pad id


def cross_entropy(logits: np.ndarray, targets: np.ndarray, pad_id: int) -> float:
    """-log softmax(logits)[target], averaged over the positions whose target is not pad_id
    (PyTorch's ignore_index). Raises InputError when every target is the pad id (0 / 0)."""
    # logits: [B, S, V], targets: [B, S]
    counted = targets != pad_id  # [B, S]
    count = int(counted.sum())
    if count == 0:
        raise InputError(f"every target is the pad id {pad_id}: the loss (a mean over the other targets) is undefined.")
    shifted = logits - logits.max(axis=-1, keepdims=True)  # [B, S, V]
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # [B, S, V], log softmax
    picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]  # [B, S], log p(target)
    return float(-(picked * counted).sum() / count)


def cross_entropy_backward(logits: np.ndarray, targets: np.ndarray, pad_id: int) -> np.ndarray:
    """d loss / d logits = (softmax(logits) - one_hot(target)) / N at the N counted positions,
    0 where the target is the pad id."""
    # logits: [B, S, V], targets: [B, S]
    counted = (targets != pad_id).astype(logits.dtype)  # [B, S], 1 where the target counts
    probs = softmax(logits)  # [B, S, V]
    one_hot = np.zeros_like(probs)  # [B, S, V]
    np.put_along_axis(one_hot, targets[..., None], 1, axis=-1)
    return (probs - one_hot) * (counted / counted.sum())[..., None]  # [B, S, V]


# ---------------------------------------------------------------------------
# The building blocks' backward steps


def linear_backward(d_out: np.ndarray, x: np.ndarray, weight: np.ndarray):
    """out = x @ W^T + b. Returns (d_x, d_weight, d_bias); the parameters' gradients are
    summed over every position, since every position used the same W and b."""
    # d_out: [..., out], x: [..., in], weight: [out, in]
    d_x = d_out @ weight  # [..., in]
    d_out_rows = d_out.reshape(-1, d_out.shape[-1])  # [N, out], N = every position (B * S)
    x_rows = x.reshape(-1, x.shape[-1])  # [N, in]
    d_weight = d_out_rows.T @ x_rows  # [out, in], the shape of W
    d_bias = d_out_rows.sum(axis=0)  # [out]
    return d_x, d_weight, d_bias


def layer_norm_backward(d_out: np.ndarray, x: np.ndarray, weight: np.ndarray, eps: float):
    """out = n * weight + bias with n = (x - mean) / sqrt(var + eps) over the last axis.
    Returns (d_x, d_weight, d_bias). The row statistics are recomputed from the input x."""
    # d_out, x: [B, S, E]
    mean = x.mean(axis=-1, keepdims=True)  # [B, S, 1]
    centered = x - mean  # [B, S, E]
    variance = (centered * centered).mean(axis=-1, keepdims=True)  # [B, S, 1], biased
    inv_std = 1 / np.sqrt(variance + eps)  # [B, S, 1]
    normalized = centered * inv_std  # [B, S, E], n
    d_weight = (d_out * normalized).sum(axis=(0, 1))  # [E]
    d_bias = d_out.sum(axis=(0, 1))  # [E]
    d_normalized = d_out * weight  # [B, S, E], g = d n
    # Every x of a row moves its mean and its variance, hence every n of the row:
    # d_x = (g - mean(g) - n * mean(g * n)) / sqrt(var + eps), means over the row.
    d_mean_term = d_normalized.mean(axis=-1, keepdims=True)  # [B, S, 1], through the mean
    d_variance_term = normalized * (d_normalized * normalized).mean(axis=-1, keepdims=True)  # [B, S, E], through the variance
    d_x = (d_normalized - d_mean_term - d_variance_term) * inv_std  # [B, S, E]
    return d_x, d_weight, d_bias


def relu_backward(d_hidden: np.ndarray, hidden_pre: np.ndarray) -> np.ndarray:
    """hidden = max(hidden_pre, 0): the gradient passes where hidden_pre > 0, else 0
    (at exactly 0 too, as in PyTorch)."""
    # d_hidden, hidden_pre: [B, S, F]
    return d_hidden * (hidden_pre > 0)  # [B, S, F]


def softmax_backward(d_weights: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """weights = softmax(scores) over the last axis. A row's Jacobian is diag(w) - w w^T,
    so d_scores = w * (d_w - sum_j d_w[j] w[j]): the row sum is what every score shares."""
    # d_weights, weights: [B, H, S, S]
    row_sum = (d_weights * weights).sum(axis=-1, keepdims=True)  # [B, H, S, 1]
    return weights * (d_weights - row_sum)  # [B, H, S, S]; 0 where the weight is 0 (masked)


# ---------------------------------------------------------------------------
# Step 3a backward: causal multi-head self-attention


def merge_heads_backward(d_context_merged: np.ndarray, n_heads: int) -> np.ndarray:
    """merge_heads only moves values (a transpose and a reshape), so its gradient moves
    back the same way: split it into heads again."""
    return split_heads(d_context_merged, n_heads)  # [B, S, E] -> [B, H, S, D]


def split_heads_backward(d_heads: np.ndarray) -> np.ndarray:
    """split_heads only moves values; its gradient is merged back: [B, H, S, D] -> [B, S, E]."""
    return merge_heads(d_heads)  # [B, S, E]


def attend_backward(d_context: np.ndarray, weights: np.ndarray, v_heads: np.ndarray):
    """context = weights @ v_heads. Returns (d_weights, d_v_heads)."""
    # d_context, v_heads: [B, H, S, D], weights: [B, H, S, S]
    v_transposed = v_heads.transpose(0, 1, 3, 2)  # [B, H, D, S]
    d_weights = d_context @ v_transposed  # [B, H, S, S]
    weights_transposed = weights.transpose(0, 1, 3, 2)  # [B, H, S, S], row j = key j
    d_v_heads = weights_transposed @ d_context  # [B, H, S, D]; value j gets what every query took from it
    return d_weights, d_v_heads


def apply_mask_backward(d_scores_masked: np.ndarray):
    """scores_masked = scores_scaled + mask: the gradient passes to scores_scaled unchanged.
    The mask [S, S] was broadcast over B and H, so its gradient is the sum over them (the
    mask is a constant, not a parameter: its gradient is computed to be compared, never used)."""
    # d_scores_masked: [B, H, S, S]
    d_scores_scaled = d_scores_masked  # [B, H, S, S]
    d_mask = d_scores_masked.sum(axis=(0, 1))  # [S, S]
    return d_scores_scaled, d_mask


def scale_scores_backward(d_scores_scaled: np.ndarray, head_dim: int) -> np.ndarray:
    """scores_scaled = scores_raw / sqrt(D), so d_scores_raw = d_scores_scaled / sqrt(D)."""
    return d_scores_scaled / math.sqrt(head_dim)  # [B, H, S, S]


def attention_scores_backward(d_scores_raw: np.ndarray, q_heads: np.ndarray, k_heads: np.ndarray):
    """scores_raw = q_heads @ k_heads^T. Returns (d_q_heads, d_k_heads)."""
    # d_scores_raw: [B, H, S, S] (row i = query i, column j = key j), q_heads, k_heads: [B, H, S, D]
    d_q_heads = d_scores_raw @ k_heads  # [B, H, S, D]; query i: its scores' gradients times the keys
    d_scores_transposed = d_scores_raw.transpose(0, 1, 3, 2)  # [B, H, S, S], row j = key j
    d_k_heads = d_scores_transposed @ q_heads  # [B, H, S, D]; key j: its scores' gradients times the queries
    return d_q_heads, d_k_heads


def self_attention_backward(d_out: np.ndarray, x: np.ndarray, p: dict, config: ModelConfig,
                            t, grads: dict, record) -> np.ndarray:
    """The attention of one block, backwards. `t(name)` reads the block's forward value
    "attention.<name>" from the trace; the parameters' gradients go into `grads` (names
    inside the block); `record(name, gradient)` keeps the gradient at "attention.<name>".
    Returns the gradient of the block's input x through q, k and v (not the residual)."""
    # d_out, x: [B, S, E]
    record("attention.out", d_out)
    d_context_merged, grads["attention.out.weight"], grads["attention.out.bias"] = linear_backward(
        d_out, t("attention.context_merged"), p["attention.out.weight"])  # [B, S, E]
    record("attention.context_merged", d_context_merged)
    d_context = merge_heads_backward(d_context_merged, config.n_heads)  # [B, H, S, D]
    record("attention.context", d_context)

    weights = t("attention.weights")  # [B, H, S, S]
    d_weights, d_v_heads = attend_backward(d_context, weights, t("attention.v_heads"))  # [B, H, S, S], [B, H, S, D]
    d_scores_masked = softmax_backward(d_weights, weights)  # [B, H, S, S]
    d_scores_scaled, d_mask = apply_mask_backward(d_scores_masked)  # [B, H, S, S], [S, S]
    d_scores_raw = scale_scores_backward(d_scores_scaled, config.head_dim)  # [B, H, S, S]
    d_q_heads, d_k_heads = attention_scores_backward(d_scores_raw, t("attention.q_heads"), t("attention.k_heads"))
    record("attention.weights", d_weights)
    record("attention.scores_masked", d_scores_masked)
    record("attention.mask", d_mask)
    record("attention.scores_scaled", d_scores_scaled)
    record("attention.scores_raw", d_scores_raw)
    record("attention.v_heads", d_v_heads)
    record("attention.k_heads", d_k_heads)
    record("attention.q_heads", d_q_heads)

    d_q = split_heads_backward(d_q_heads)  # [B, S, E]
    d_k = split_heads_backward(d_k_heads)  # [B, S, E]
    d_v = split_heads_backward(d_v_heads)  # [B, S, E]
    record("attention.v", d_v)
    record("attention.k", d_k)
    record("attention.q", d_q)
    d_x_from_v, grads["attention.v.weight"], grads["attention.v.bias"] = linear_backward(d_v, x, p["attention.v.weight"])
    d_x_from_k, grads["attention.k.weight"], grads["attention.k.bias"] = linear_backward(d_k, x, p["attention.k.weight"])
    d_x_from_q, grads["attention.q.weight"], grads["attention.q.bias"] = linear_backward(d_q, x, p["attention.q.weight"])
    return d_x_from_q + d_x_from_k + d_x_from_v  # [B, S, E]; x fed all three projections


# ---------------------------------------------------------------------------
# Step 3b backward: the feed-forward, E -> F -> E


def feed_forward_backward(d_out: np.ndarray, x: np.ndarray, p: dict, t, grads: dict, record) -> np.ndarray:
    """Returns the gradient of the FFN's input x (not the residual)."""
    # d_out, x: [B, S, E]
    record("feed_forward.out", d_out)
    d_hidden, grads["feed_forward.linear2.weight"], grads["feed_forward.linear2.bias"] = linear_backward(
        d_out, t("feed_forward.hidden"), p["feed_forward.linear2.weight"])  # [B, S, F]
    record("feed_forward.hidden", d_hidden)
    d_hidden_pre = relu_backward(d_hidden, t("feed_forward.hidden_pre"))  # [B, S, F]
    record("feed_forward.hidden_pre", d_hidden_pre)
    d_x, grads["feed_forward.linear1.weight"], grads["feed_forward.linear1.bias"] = linear_backward(
        d_hidden_pre, x, p["feed_forward.linear1.weight"])  # [B, S, E]
    return d_x


# ---------------------------------------------------------------------------
# Step 3 backward: one block (post-norm)


def decoder_block_backward(d_out: np.ndarray, x: np.ndarray, p: dict, config: ModelConfig,
                           t, grads: dict, record) -> np.ndarray:
    """d_out: the gradient of the block's output (its norm2); x: the block's input.
    Returns the gradient of x."""
    # d_out, x: [B, S, E]
    record("norm2", d_out)
    d_residual2, grads["norm2.weight"], grads["norm2.bias"] = layer_norm_backward(
        d_out, t("residual2"), p["norm2.weight"], config.ln_eps)  # [B, S, E]
    record("residual2", d_residual2)

    # residual2 = norm1 + feed_forward(norm1): norm1 gets the residual's gradient plus the FFN's
    d_norm1_through_ffn = feed_forward_backward(d_residual2, t("norm1"), p, t, grads, record)  # [B, S, E]
    d_norm1 = d_residual2 + d_norm1_through_ffn  # [B, S, E]
    record("norm1", d_norm1)
    d_residual1, grads["norm1.weight"], grads["norm1.bias"] = layer_norm_backward(
        d_norm1, t("residual1"), p["norm1.weight"], config.ln_eps)  # [B, S, E]
    record("residual1", d_residual1)

    # residual1 = x + attention(x): x gets the residual's gradient plus the attention's
    d_x_through_attention = self_attention_backward(d_residual1, x, p, config, t, grads, record)  # [B, S, E]
    return d_residual1 + d_x_through_attention  # [B, S, E]


# ---------------------------------------------------------------------------
# Steps 1 and 2 backward: embedding plus positional encoding


def positions_backward(d_pos: np.ndarray, max_seq_len: int) -> np.ndarray:
    """Only the first S rows of pos_encoding were used; the others get gradient 0."""
    # d_pos: [1, S, E]
    _, seq_len, d_model = d_pos.shape
    d_pos_encoding = np.zeros((1, max_seq_len, d_model), dtype=d_pos.dtype)  # [1, T, E]
    d_pos_encoding[:, :seq_len, :] = d_pos
    return d_pos_encoding  # [1, T, E]


def embed_tokens_backward(d_tokens: np.ndarray, ids: np.ndarray, vocab_size: int, pad_id: int) -> np.ndarray:
    """Row ids[b, s] of the embedding was looked up at (b, s): it gets d_tokens[b, s],
    summed over every position where the same id occurs (np.add.at adds repeated
    indices; a fancy-indexed += would keep only one of them). The pad row gets no
    gradient: the original's padding_idx."""
    # d_tokens: [B, S, E], ids: [B, S]
    d_embed = np.zeros((vocab_size, d_tokens.shape[-1]), dtype=d_tokens.dtype)  # [V, E]
    np.add.at(d_embed, ids, d_tokens)  # scatter-add the rows
    d_embed[pad_id] = 0  # padding_idx: the pad row never learns
    return d_embed  # [V, E]


# ---------------------------------------------------------------------------
# The order in which the gradients are compared


# The parameters whose gradients a backward step computes, keyed by the trace name of
# that step's output (inside a block, names inside the block).
STEP_PARAMETERS = {
    "logits": ("final_layer.weight", "final_layer.bias"),
    "embed.pos": ("pos_encoding",),
    "embed.tokens": ("embed.weight",),
}
BLOCK_STEP_PARAMETERS = {
    "norm2": ("norm2.weight", "norm2.bias"),
    "feed_forward.out": ("feed_forward.linear2.weight", "feed_forward.linear2.bias"),
    "feed_forward.hidden_pre": ("feed_forward.linear1.weight", "feed_forward.linear1.bias"),
    "norm1": ("norm1.weight", "norm1.bias"),
    "attention.out": ("attention.out.weight", "attention.out.bias"),
    "attention.v": ("attention.v.weight", "attention.v.bias"),
    "attention.k": ("attention.k.weight", "attention.k.bias"),
    "attention.q": ("attention.q.weight", "attention.q.bias"),
}


def gradient_order(n_layers: int) -> list[str]:
    """Every name that gets a gradient, trace names and parameters, in the order the
    comparison reads them: the trace names in REVERSE execution order, each followed by
    the parameters of the step that produced it. A wrong backward step changes its own
    gradients and those of everything computed before it in the forward, never those
    after it; so in this order the first mismatch is the wrong step."""
    order = []
    for name in reversed(trace_names(n_layers)):
        order.append(name)
        if name in STEP_PARAMETERS:
            order += STEP_PARAMETERS[name]
        elif name.startswith("layers."):
            layer, inside = name[len("layers."):].split(".", 1)
            order += [f"layers.{layer}.{param}" for param in BLOCK_STEP_PARAMETERS.get(inside, ())]
    return order


# ---------------------------------------------------------------------------
# The whole backward pass


def check_targets(config: ModelConfig, ids: np.ndarray, targets) -> np.ndarray:
    """targets as an int64 array of the shape of ids, every one an id of the vocabulary."""
    array = np.asarray(targets)
    if array.dtype == object or not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"targets must be integer ids; got an array of {array.dtype}.")
    if array.shape != ids.shape:
        raise InputError(f"targets must have the shape of the inputs {list(ids.shape)}; got {list(array.shape)}.")
    if array.size and (array.min() < 0 or array.max() >= config.vocab_size):
        bad = int(array.min()) if array.min() < 0 else int(array.max())
        raise InputError(f"target id {bad} is outside the vocabulary of {config.vocab_size} words.")
    return array.astype(np.int64)


def backward(params: dict, config: ModelConfig, ids: np.ndarray, targets: np.ndarray, trace: OrderedDict):
    """The gradients of the loss, from the forward's trace of `ids`.
    Returns (param_grads: canonical name -> gradient, in the schema's order;
    trace_grads: trace name -> gradient, in reverse execution order)."""
    grads, recorded = {}, {}

    def recorder(prefix: str):
        return lambda name, value: recorded.__setitem__(prefix + name, value)

    def reader(prefix: str):
        return lambda name: trace[prefix + name]

    record = recorder("")

    d_logits = cross_entropy_backward(trace["logits"], targets, config.pad_id)  # [B, S, V]
    record("logits", d_logits)
    last = f"layers.{config.n_layers - 1}.norm2"
    d_x, grads["final_layer.weight"], grads["final_layer.bias"] = linear_backward(
        d_logits, trace[last], params["final_layer.weight"])  # [B, S, E]

    for layer in reversed(range(config.n_layers)):
        block_input = trace["embed.out"] if layer == 0 else trace[f"layers.{layer - 1}.norm2"]  # [B, S, E]
        block_grads = {}
        d_x = decoder_block_backward(d_x, block_input, block_params(params, layer), config,
                                     reader(f"layers.{layer}."), block_grads, recorder(f"layers.{layer}."))
        grads.update({f"layers.{layer}.{name}": value for name, value in block_grads.items()})

    # embed.out = tokens + pos, pos [1, S, E] broadcast over the batch: it gets the batch's sum
    record("embed.out", d_x)
    d_tokens = d_x  # [B, S, E]
    d_pos = d_x.sum(axis=0, keepdims=True)  # [1, S, E]
    record("embed.pos", d_pos)
    record("embed.tokens", d_tokens)
    grads["pos_encoding"] = positions_backward(d_pos, config.max_seq_len)  # [1, T, E]
    grads["embed.weight"] = embed_tokens_backward(d_tokens, ids, config.vocab_size, config.pad_id)  # [V, E]

    param_grads = OrderedDict((name, grads[name]) for name in parameter_shapes(config))
    trace_grads = OrderedDict((name, recorded[name]) for name in reversed(trace_names(config.n_layers)))
    return param_grads, trace_grads


def loss_and_gradients(params: dict, config: ModelConfig, ids: np.ndarray, targets: np.ndarray):
    """(loss, param_grads, trace_grads) for one batch: inputs ids [B, S] and the next tokens
    targets [B, S]. `params` in one float dtype (e.g. Model.params); the gradients have that
    dtype. ids must be valid (Model.check_ids); targets are checked here."""
    ids = np.asarray(ids)
    targets = check_targets(config, ids, targets)
    trace = OrderedDict()
    logits = forward(params, config, ids, trace)  # [B, S, V]
    loss = cross_entropy(logits, targets, config.pad_id)
    param_grads, trace_grads = backward(params, config, ids, targets, trace)
    return loss, param_grads, trace_grads
