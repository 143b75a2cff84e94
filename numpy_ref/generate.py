"""Generating words, in the ways SPEC "Generation in the original" describes.

Two things make a way of generating: how the context is laid out, and how the next
word is chosen from the logits at its last position.

Context:
  padded    the original program's: the ids LEFT-padded with the pad id to exactly
            max_seq_len (or cut to the last max_seq_len), so the prompt always sits
            at the end of a full context;
  unpadded  the notebook's: the ids as they are, with the first S positional rows
            (sliced positions); past max_seq_len only the last max_seq_len are kept.

Choice:
  argmax    the most likely word;
  original  the original's sampling: if the last word is <nl>, <nl> gets -1e9; each of
            the last 5 ids of the text adds -2.0 to its own logit; then softmax of
            logits / 0.5 and one draw;
  sample    softmax of logits / temperature, optionally over the top k only, one draw.

The modes name the combinations:
  original-next   padded + argmax    the original's prediction of one next word
  original        padded + original  the original's generation of a sequence
  notebook        unpadded + argmax  the notebook's loop, by hand, one word at a time
  greedy          unpadded + argmax  (the same as notebook; the usual name)
  sample          unpadded + sample  temperature / top-k sampling

Every random number is drawn here, from one numpy Generator, one uniform number per
sampled word; the implementation that computes the logits (NumPy or PyTorch) only
supplies them, so the same seed chooses the same words with either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .vocab import NEWLINE_WORD

MODES = {
    "original-next": ("padded", "argmax"),
    "original": ("padded", "original"),
    "notebook": ("unpadded", "argmax"),
    "greedy": ("unpadded", "argmax"),
    "sample": ("unpadded", "sample"),
}

ORIGINAL_TEMPERATURE = 0.5
ORIGINAL_PENALTY = -2.0
ORIGINAL_PENALTY_WINDOW = 5
NEWLINE_BAN = -1e9


def padded_context(ids: list[int], max_seq_len: int, pad_id: int) -> np.ndarray:
    """The original's layout: the last max_seq_len ids, left-padded with pad_id to max_seq_len."""
    kept = ids[-max_seq_len:]
    return np.array([[pad_id] * (max_seq_len - len(kept)) + kept], dtype=np.int64)  # [1, T]


def unpadded_context(ids: list[int], max_seq_len: int) -> np.ndarray:
    """The notebook's layout: the ids as they are (the last max_seq_len of them)."""
    return np.array([ids[-max_seq_len:]], dtype=np.int64)  # [1, S], S <= T


def softmax64(logits: np.ndarray) -> np.ndarray:
    """Softmax of one row of logits, in float64 (where the choosing happens)."""
    probabilities = logits.astype(np.float64)
    probabilities -= probabilities.max()
    np.exp(probabilities, out=probabilities)
    probabilities /= probabilities.sum()
    return probabilities


def draw(probabilities: np.ndarray, uniform: float) -> int:
    """Inverse-CDF draw: the first id whose cumulative probability exceeds `uniform`."""
    cumulative = np.cumsum(probabilities)
    return int(min(np.searchsorted(cumulative, uniform * cumulative[-1], side="right"), len(probabilities) - 1))


def original_adjustments(logits: np.ndarray, ids: list[int], newline_id: int | None) -> np.ndarray:
    """The original's penalties: ban <nl> after <nl>; -2.0 per occurrence among the last 5 ids."""
    adjusted = logits.astype(np.float64).copy()
    if newline_id is not None and ids and ids[-1] == newline_id:
        adjusted[newline_id] += NEWLINE_BAN
    for previous in ids[-ORIGINAL_PENALTY_WINDOW:]:
        adjusted[previous] += ORIGINAL_PENALTY
    return adjusted


@dataclass
class Step:
    """One generated word: the id, the word, its probability under the distribution it was
    chosen from, and the context's shape that produced it."""

    id: int
    word: str
    probability: float
    context_shape: tuple


@dataclass
class Generation:
    prompt_ids: list[int]
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + [step.id for step in self.steps]


def choose(last_logits: np.ndarray, ids: list[int], choice: str, rng, vocab: list[str],
           temperature: float = 1.0, top_k: int | None = None) -> tuple[int, float]:
    """The next id and its probability, by one of the choice rules."""
    if choice == "argmax":
        probabilities = softmax64(last_logits)
        chosen = int(np.argmax(last_logits))
        return chosen, float(probabilities[chosen])
    if choice == "original":
        newline_id = vocab.index(NEWLINE_WORD) if NEWLINE_WORD in vocab else None
        probabilities = softmax64(original_adjustments(last_logits, ids, newline_id) / ORIGINAL_TEMPERATURE)
    elif choice == "sample":
        scaled = last_logits.astype(np.float64) / temperature
        if top_k is not None and top_k < len(scaled):
            threshold = np.sort(scaled)[-top_k]
            scaled = np.where(scaled >= threshold, scaled, -np.inf)
        probabilities = softmax64(scaled)
    else:
        raise InputError(f"unknown choice rule {choice!r}")
    chosen = draw(probabilities, rng.random())
    return chosen, float(probabilities[chosen])


def generate(logits_fn, config, vocab: list[str], prompt_ids: list[int], steps: int, mode: str = "notebook",
             seed: int = 0, temperature: float = 1.0, top_k: int | None = None) -> Generation:
    """Grow the prompt by `steps` words. logits_fn(ids [1, S]) -> logits [1, S, V] (any implementation)."""
    if mode not in MODES:
        raise InputError(f"unknown generation mode {mode!r}; choose one of {', '.join(MODES)}.")
    if not prompt_ids:
        raise InputError("the prompt is empty: give at least one word.")
    if steps < 0:
        raise InputError(f"--steps must be 0 or more, got {steps}.")
    if mode == "sample" and not temperature > 0:
        raise InputError(f"--temperature must be positive, got {temperature}.")
    if top_k is not None and top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {top_k}.")
    layout, choice = MODES[mode]
    rng = np.random.default_rng(seed)
    result = Generation(list(prompt_ids))
    if len(prompt_ids) > config.max_seq_len:
        result.notes.append(f"the prompt has {len(prompt_ids)} words; the model sees only the last "
                            f"{config.max_seq_len} (max_seq_len)")
    ids = list(prompt_ids)
    for _ in range(steps):
        if layout == "padded":
            context = padded_context(ids, config.max_seq_len, config.pad_id)
        else:
            context = unpadded_context(ids, config.max_seq_len)
        last_logits = np.asarray(logits_fn(context))[0, -1]  # [V]
        chosen, probability = choose(last_logits, ids, choice, rng, vocab, temperature, top_k)
        result.steps.append(Step(chosen, vocab[chosen], probability, context.shape))
        ids.append(chosen)
    return result
