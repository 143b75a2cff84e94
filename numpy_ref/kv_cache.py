"""A KV cache for unpadded generation: a faster path BESIDE the reference, not in it.

The reference recomputes the whole context for every new word. But in a causal
decoder, position i's keys and values depend only on tokens 0..i, so once they
are computed they never change: keep them, and for each new token compute only its
own query, key and value, attend over the kept keys and values, and append.

Each step reuses the reference's own step functions (linear, split_heads,
softmax, layer_norm, ...). The tests check that the logits equal the full
recompute's at every step.

Limit: positions index the positional encoding, so the cache holds at most
max_seq_len tokens. Past that, the unpadded layout keeps the last max_seq_len
tokens, every token's position shifts, and nothing cached stays valid: the cache
is rebuilt from the window (no faster than the recompute from then on).
"""

from __future__ import annotations

import numpy as np

from .forward import (attention_scores, block_params, causal_mask, embed_tokens, layer_norm, linear, merge_heads,
                      relu, scale_scores, softmax, split_heads)


class KVCache:
    """Keys and values of the tokens seen so far, per layer: [1, H, t, D] each."""

    def __init__(self, model):
        self.model = model
        self.ids: list[int] = []
        self.keys: list[np.ndarray | None] = [None] * model.config.n_layers
        self.values: list[np.ndarray | None] = [None] * model.config.n_layers

    def __len__(self) -> int:
        return len(self.ids)

    def feed(self, new_ids: list[int]) -> np.ndarray:
        """Run the new tokens at the positions after the cached ones; return their logits [1, n, V]."""
        config, params = self.model.config, self.model.params
        start, count = len(self.ids), len(new_ids)
        if start + count > config.max_seq_len:
            raise ValueError(f"the cache holds at most max_seq_len={config.max_seq_len} tokens")
        ids = self.model.check_ids(np.array([new_ids]))  # [1, n]
        x = embed_tokens(params["embed.weight"], ids) + params["pos_encoding"][:, start:start + count, :]  # [1, n, E]
        # The new queries see every cached key and the new keys up to their own position:
        # query i (position start + i) may see keys 0 .. start + i.
        mask = causal_mask(start + count, config.mask_value, x.dtype)[start:, :]  # [n, start + n]
        for layer in range(config.n_layers):
            p = block_params(params, layer)
            q = split_heads(linear(x, p["attention.q.weight"], p["attention.q.bias"]), config.n_heads)  # [1, H, n, D]
            k = split_heads(linear(x, p["attention.k.weight"], p["attention.k.bias"]), config.n_heads)  # [1, H, n, D]
            v = split_heads(linear(x, p["attention.v.weight"], p["attention.v.bias"]), config.n_heads)  # [1, H, n, D]
            if self.keys[layer] is not None:
                k = np.concatenate([self.keys[layer], k], axis=2)  # [1, H, start + n, D]
                v = np.concatenate([self.values[layer], v], axis=2)  # [1, H, start + n, D]
            self.keys[layer], self.values[layer] = k, v
            weights = softmax(scale_scores(attention_scores(q, k), config.head_dim) + mask)  # [1, H, n, start + n]
            attn_out = linear(merge_heads(weights @ v), p["attention.out.weight"], p["attention.out.bias"])  # [1, n, E]
            x = layer_norm(x + attn_out, p["norm1.weight"], p["norm1.bias"], config.ln_eps)  # [1, n, E]
            hidden = relu(linear(x, p["feed_forward.linear1.weight"], p["feed_forward.linear1.bias"]))  # [1, n, F]
            ff = linear(hidden, p["feed_forward.linear2.weight"], p["feed_forward.linear2.bias"])  # [1, n, E]
            x = layer_norm(x + ff, p["norm2.weight"], p["norm2.bias"], config.ln_eps)  # [1, n, E]
        self.ids.extend(int(i) for i in new_ids)
        return linear(x, params["final_layer.weight"], params["final_layer.bias"])  # [1, n, V]


class CachedLogits:
    """A logits function for numpy_ref.generate that reuses a KVCache.

    Called with a context [1, S] that extends the previous one, it feeds only the new
    tokens; otherwise (the window slid past max_seq_len, or a new prompt) it starts a
    fresh cache. It returns the logits of the tokens it fed, [1, n, V]: the last row is
    the last position's, which is all generation reads.
    """

    def __init__(self, model):
        self.model = model
        self.cache = KVCache(model)
        self.builds = 0  # how many times a cache was started (1 while the window never slides)

    def __call__(self, context: np.ndarray) -> np.ndarray:
        ids = [int(i) for i in np.asarray(context)[0]]
        cached = self.cache.ids
        if len(ids) <= len(cached) or ids[:len(cached)] != cached:
            self.cache = KVCache(self.model)
            self.builds += 1
            cached = []
        return self.cache.feed(ids[len(cached):])
