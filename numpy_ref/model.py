"""The public face of the reference: `load` a checkpoint, call the model on ids."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .checkpoint import Checkpoint, load_checkpoint, validate_params, validate_vocab
from .config import ModelConfig
from .errors import InputError
from .forward import forward
from .vocab import Vocabulary

DTYPES = {"float32": np.float32, "float64": np.float64}


def resolve_dtype(dtype) -> type:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise InputError(f"dtype {dtype!r} is not supported; use float32 or float64.")
    return DTYPES[name]


class Model:
    """The decoder with its weights in one dtype.

    model(ids) -> logits [B, S, V]; model.run_with_trace(ids) -> (logits, trace)
    where trace maps every SPEC intermediate name to its array, in execution order.
    """

    def __init__(self, config: ModelConfig, params: dict, vocab: list[str] | None = None, dtype="float32"):
        self.config = config
        self.dtype = resolve_dtype(dtype)
        checked = validate_params(params, config, "the model's parameters")
        self.params = {name: np.ascontiguousarray(value, dtype=self.dtype) for name, value in checked.items()}
        if vocab is None:
            vocab = [f"<id {i}>" for i in range(config.vocab_size)]
        self.vocab = validate_vocab(list(vocab), config, "the model's vocabulary")
        self.vocabulary = Vocabulary(self.vocab, pad_id=config.pad_id)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, dtype="float32") -> "Model":
        return cls(checkpoint.config, checkpoint.params, checkpoint.vocab, dtype)

    def check_ids(self, ids) -> np.ndarray:
        """Turn ids into an int64 array [B, S], or say exactly what is wrong with them."""
        array = np.asarray(ids)
        if array.dtype == object or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
            raise InputError(f"token ids must be integers; got an array of {array.dtype}.")
        if array.ndim != 2:
            raise InputError(f"token ids must have shape [B, S] (batch, sequence); got shape {list(array.shape)}.")
        batch, seq_len = array.shape
        if batch == 0 or seq_len == 0:
            raise InputError(f"the batch is empty (shape {list(array.shape)}); give at least one sequence of at least one token.")
        if seq_len > self.config.max_seq_len:
            raise InputError(
                f"the sequence has {seq_len} tokens but the positional encoding has only "
                f"max_seq_len={self.config.max_seq_len} rows; keep the last {self.config.max_seq_len} tokens."
            )
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= self.config.vocab_size:
            bad = low if low < 0 else high
            raise InputError(f"token id {bad} is outside the vocabulary of {self.config.vocab_size} words (ids 0 to {self.config.vocab_size - 1}).")
        return array.astype(np.int64)

    def __call__(self, ids) -> np.ndarray:
        return forward(self.params, self.config, self.check_ids(ids))

    def run_with_trace(self, ids) -> tuple[np.ndarray, OrderedDict]:
        trace = OrderedDict()
        logits = forward(self.params, self.config, self.check_ids(ids), trace)
        return logits, trace

    def encode(self, text: str):
        """Prompt text -> Encoded(ids, unknown words); unknown words become pad_id."""
        return self.vocabulary.encode(text)

    def decode(self, ids) -> str:
        return self.vocabulary.decode(ids)


def load(path, dtype="float32") -> Model:
    """Load a canonical safetensors checkpoint as a Model computing in `dtype`."""
    return Model.from_checkpoint(load_checkpoint(path), dtype)
