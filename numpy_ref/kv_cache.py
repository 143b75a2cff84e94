"""A KV cache for unpadded generation: a faster path BESIDE the reference, not in it.

The reference recomputes the whole context for every new word. But in a causal
decoder, position i's keys and values depend only on tokens 0..i, so once they
are computed they never change: keep them, and for each new token compute only its
own query, key and value, attend over the kept keys and values, and append.

The keys and values of every layer live in arrays of max_seq_len rows, allocated
once and filled in place; the weights come pre-fused and pre-transposed from the
fast path (numpy_ref.fast.FastModel), since one new token is a tiny amount of
arithmetic and the number of NumPy calls is what costs. The tests check that the
logits equal the full recompute's at every step.

Limit: positions index the positional encoding, so the cache holds at most
max_seq_len tokens. Past that, the unpadded layout keeps the last max_seq_len
tokens, every token's position shifts, and nothing cached stays valid: the cache
is rebuilt from the window (no faster than the recompute from then on).
"""

from __future__ import annotations

import numpy as np

from .fast import FastModel


class KVCache:
    """Keys and values of the tokens seen so far, per layer: [H, T, D] arrays, the first
    len(self) rows filled."""

    def __init__(self, model, fast: FastModel | None = None):
        self.model = model
        self.fast = fast or FastModel(model)
        config = model.config
        shape = (config.n_heads, config.max_seq_len, config.head_dim)  # [H, T, D]
        self.keys = [np.zeros(shape, dtype=model.dtype) for _ in range(config.n_layers)]
        self.values = [np.zeros(shape, dtype=model.dtype) for _ in range(config.n_layers)]
        self.ids: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)

    def feed(self, new_ids: list[int]) -> np.ndarray:
        """Run the new tokens at the positions after the cached ones; return their logits [1, n, V]."""
        config, fast = self.model.config, self.fast
        start, count = len(self.ids), len(new_ids)
        end = start + count
        if end > config.max_seq_len:
            raise ValueError(f"the cache holds at most max_seq_len={config.max_seq_len} tokens")
        if not all(0 <= int(i) < config.vocab_size for i in new_ids):
            self.model.check_ids(np.array([new_ids]))  # raises the usual InputError
        if count == 1:
            return self._step(int(new_ids[0]))[None, None]  # [1, 1, V]
        ids = np.asarray(new_ids, dtype=np.int64)  # [n]
        H, D, E = config.n_heads, config.head_dim, config.d_model
        x = fast.embed[ids] + fast.pos[start:end]  # [n, E]
        # query i (position start + i) may see keys 0 .. start + i: a mask only where n > 1
        mask = fast.mask(end)[start:, :] if count > 1 else None  # [n, end]
        for layer, keys, values in zip(fast.layers, self.keys, self.values):
            qkv = x @ layer["qkv_t"]  # [n, 3E]
            qkv += layer["qkv_b"]
            qkv = qkv.reshape(count, 3, H, D).transpose(1, 2, 0, 3)  # [3, H, n, D]
            keys[:, start:end] = qkv[1]  # the new keys and values join the cache
            values[:, start:end] = qkv[2]
            scores = qkv[0] @ keys[:, :end].transpose(0, 2, 1)  # [H, n, end]
            if mask is not None:
                scores += mask
            fast.softmax_(scores)
            context = (scores @ values[:, :end]).transpose(1, 0, 2).reshape(count, E)  # [n, E]
            x = fast.block_tail(x, context, layer)  # [n, E]
        self.ids.extend(ids.tolist())
        logits = x @ fast.final_t  # [n, V]
        logits += fast.final_b
        return logits[None]  # [1, n, V]


    def _step(self, token: int) -> np.ndarray:
        """One token, the case every generated word is: the same arithmetic on vectors, in
        fewer NumPy calls (at this size each call costs more than its arithmetic)."""
        config, fast = self.model.config, self.fast
        H, D, E = config.n_heads, config.head_dim, config.d_model
        t = len(self.ids)
        x = fast.embed[token] + fast.pos[t]  # [E]
        for layer, keys, values in zip(fast.layers, self.keys, self.values):
            qkv = x @ layer["qkv_t"]  # [3E], q already divided by sqrt(D)
            qkv += layer["qkv_b"]
            keys[:, t] = qkv[E:2 * E].reshape(H, D)
            values[:, t] = qkv[2 * E:].reshape(H, D)
            scores = qkv[:E].reshape(H, 1, D) @ keys[:, :t + 1].transpose(0, 2, 1)  # [H, 1, t + 1]: no mask needed
            fast.softmax_(scores)
            context = (scores @ values[:, :t + 1]).reshape(E)  # [E]
            attn_out = context @ layer["out_t"]
            attn_out += layer["out_b"]
            attn_out += x
            x = _layer_norm_vector(attn_out, layer["n1_w"], layer["n1_b"], config.ln_eps)  # [E]
            hidden = x @ layer["ff1_t"]  # [F]
            hidden += layer["ff1_b"]
            np.maximum(hidden, 0, out=hidden)
            ff = hidden @ layer["ff2_t"]  # [E]
            ff += layer["ff2_b"]
            ff += x
            x = _layer_norm_vector(ff, layer["n2_w"], layer["n2_b"], config.ln_eps)  # [E]
        self.ids.append(token)
        logits = x @ fast.final_t  # [V]
        logits += fast.final_b
        return logits


def _layer_norm_vector(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm of one vector [E]: the mean and the biased variance are scalars here."""
    width = x.shape[0]
    centered = x - np.add.reduce(x) / width  # [E]
    variance = np.dot(centered, centered) / width  # a scalar: the biased variance
    return centered * (weight / np.sqrt(variance + eps)) + bias  # [E]


class CachedLogits:
    """A logits function for numpy_ref.generate that reuses a KVCache.

    Called with a context [1, S] that extends the previous one, it feeds only the new
    tokens; otherwise (the window slid past max_seq_len, or a new prompt) it starts a
    fresh cache. It returns the logits of the tokens it fed, [1, n, V]: the last row is
    the last position's, which is all generation reads.
    """

    def __init__(self, model):
        self.model = model
        self.fast = FastModel(model)
        self.cache = KVCache(model, self.fast)
        self.builds = 0  # how many times a cache was started (1 while the window never slides)

    def __call__(self, context: np.ndarray) -> np.ndarray:
        ids = np.asarray(context)[0].tolist()
        cached = self.cache.ids
        if len(ids) <= len(cached) or ids[:len(cached)] != cached:
            self.cache = KVCache(self.model, self.fast)
            self.builds += 1
            cached = []
        return self.cache.feed(ids[len(cached):])
