"""The training data pipeline of SPEC "Loss and training": word stream -> ids -> batches.

The stream of ids is cut into consecutive, non-overlapping chunks of (S + 1) * B
ids; each chunk is reshaped to [B, S + 1]; the input is [:, :S] and the target,
the next token at each position, is [:, 1:]. The stream is cycled: an epoch has
ceil(N / chunk) batches, and the last one is completed from the stream's start.
Every epoch starts again at id 0 (there is no shuffling).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError


def encode_words(words: list[str], vocab: list[str], source: str = "the text") -> np.ndarray:
    """Map a word stream to ids; every word must be in the vocabulary (it was built from it)."""
    index = {word: i for i, word in enumerate(vocab)}
    try:
        return np.array([index[word] for word in words], dtype=np.int64)
    except KeyError as error:
        raise InputError(f"{source}: the word {error.args[0]!r} is not in the vocabulary.") from None


def batches_per_epoch(n_ids: int, batch_size: int, seq_len: int) -> int:
    return math.ceil(n_ids / ((seq_len + 1) * batch_size))


def batch(ids: np.ndarray, index: int, batch_size: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch `index` of an epoch: (inputs [B, S], targets [B, S])."""
    if len(ids) < 2:
        raise InputError(f"a training stream needs at least 2 tokens; it has {len(ids)}.")
    chunk = (seq_len + 1) * batch_size
    positions = (index * chunk + np.arange(chunk)) % len(ids)  # [chunk], cycling past the end
    rows = ids[positions].reshape(batch_size, seq_len + 1)  # [B, S + 1]
    return rows[:, :seq_len], rows[:, 1:]  # [B, S], [B, S]


def epoch_batches(ids: np.ndarray, batch_size: int, seq_len: int, start: int = 0):
    """Yield (index, inputs, targets) for the batches of one epoch from batch `start` on."""
    for index in range(start, batches_per_epoch(len(ids), batch_size, seq_len)):
        inputs, targets = batch(ids, index, batch_size, seq_len)
        yield index, inputs, targets
