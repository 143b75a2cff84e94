"""The canonical checkpoint: a safetensors file, read and written in one place.

Layout (SPEC "Canonical names"): one float tensor per canonical parameter name,
and two metadata entries, `config` (a JSON object of ModelConfig's fields) and
`vocab` (a JSON list of the words in id order). Writing is atomic: the file is
written under a temporary name in the same folder and renamed into place, so an
interrupted write never leaves a partial checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from .atomic import atomic_path
from .config import ModelConfig
from .errors import CheckpointError, ConfigError
from .schema import parameter_shapes

FLOAT_DTYPES = (np.float16, np.float32, np.float64)


@dataclass
class Checkpoint:
    config: ModelConfig
    vocab: list[str]
    params: dict[str, np.ndarray]  # canonical name -> array, in the schema's order


def validate_params(params: dict, config: ModelConfig, source: str) -> dict[str, np.ndarray]:
    """Check names, shapes, dtypes and finiteness; return the params in schema order.

    `source` names where the tensors came from (a file path) in every message.
    """
    expected = parameter_shapes(config)
    missing = [name for name in expected if name not in params]
    extra = [name for name in params if name not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s): {', '.join(missing[:6])}" + (" ..." if len(missing) > 6 else ""))
        if extra:
            parts.append(f"unexpected {len(extra)} tensor(s): {', '.join(extra[:6])}" + (" ..." if len(extra) > 6 else ""))
        raise CheckpointError(
            f"{source}: the tensors do not match a model with n_layers={config.n_layers}: "
            + "; ".join(parts) + ". Expected exactly the canonical names of SPEC."
        )
    ordered = {}
    for name, shape in expected.items():
        array = np.asarray(params[name])
        if array.dtype.type not in FLOAT_DTYPES:
            raise CheckpointError(f"{source}: tensor {name!r} has dtype {array.dtype}; expected a float type (float32).")
        if tuple(array.shape) != shape:
            raise CheckpointError(
                f"{source}: tensor {name!r} has shape {list(array.shape)}; the config "
                f"(vocab_size={config.vocab_size}, d_model={config.d_model}, d_ff={config.d_ff}, "
                f"max_seq_len={config.max_seq_len}) requires {list(shape)}."
            )
        if not np.all(np.isfinite(array)):
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise CheckpointError(f"{source}: tensor {name!r} holds {bad} NaN or infinite value(s); weights must be finite.")
        ordered[name] = array
    return ordered


def validate_vocab(vocab, config: ModelConfig, source: str) -> list[str]:
    if not isinstance(vocab, list) or not all(isinstance(word, str) for word in vocab):
        raise CheckpointError(f"{source}: the vocabulary must be a list of words (strings).")
    if len(vocab) != config.vocab_size:
        raise CheckpointError(
            f"{source}: the vocabulary has {len(vocab)} words but the model has vocab_size={config.vocab_size} "
            f"(rows of embed.weight); they must be equal."
        )
    seen = set()
    for index, word in enumerate(vocab):
        if word in seen:
            raise CheckpointError(f"{source}: the word {word!r} appears twice in the vocabulary (again at id {index}); ids must be unique.")
        if not word or word != word.strip() or len(word.split()) != 1:
            raise CheckpointError(f"{source}: vocabulary entry {index} ({word!r}) is not a single word without white space.")
        seen.add(word)
    return vocab


def save_checkpoint(path, params: dict, config: ModelConfig, vocab: list[str], overwrite: bool = True) -> None:
    """Write a canonical safetensors checkpoint atomically (float32 tensors)."""
    path = Path(path)
    source = str(path)
    params = validate_params(params, config, "the tensors to save")
    vocab = validate_vocab(list(vocab), config, "the vocabulary to save")
    if path.exists() and not overwrite:
        raise CheckpointError(f"{source} already exists; pass --force to overwrite it.")
    if not path.parent.is_dir():
        raise CheckpointError(f"{source}: the folder {path.parent} does not exist.")
    tensors = {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in params.items()}
    metadata = {"config": config.to_json(), "vocab": json.dumps(vocab, ensure_ascii=False)}
    with atomic_path(path) as temporary:
        safetensors.numpy.save_file(tensors, temporary, metadata=metadata)


def load_checkpoint(path) -> Checkpoint:
    """Read and validate a canonical safetensors checkpoint."""
    source = str(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{source}: no such file.")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            params = {name: handle.get_tensor(name) for name in handle.keys()}
    except (safetensors.SafetensorError, OSError, ValueError, TypeError) as error:
        raise CheckpointError(
            f"{source}: not a readable safetensors file ({error}). A canonical checkpoint is a safetensors "
            f"file with the tensors and the 'config' and 'vocab' metadata of SPEC."
        ) from None
    for key in ("config", "vocab"):
        if key not in metadata:
            raise CheckpointError(
                f"{source}: the safetensors metadata has no {key!r} entry; a canonical checkpoint stores the "
                f"model config and the vocabulary there (found entries: {sorted(metadata) or 'none'})."
            )
    try:
        config = ModelConfig.from_json(metadata["config"], source=f"{source} (metadata 'config')")
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    try:
        vocab = json.loads(metadata["vocab"])
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{source}: metadata 'vocab' is not valid JSON ({error}).") from None
    vocab = validate_vocab(vocab, config, source)
    params = validate_params(params, config, source)
    return Checkpoint(config=config, vocab=vocab, params=params)
