"""Any checkpoint file -> a validated canonical Checkpoint, plus notes for a person.

    from conversion import load_any
    checkpoint, notes = load_any("model.pt", heads=4, vocab_from=("train.txt", "eval.txt"))

The format is told by the file's first bytes, never by its name:

| first bytes                  | format                                                        |
| ---------------------------- | ------------------------------------------------------------- |
| 8-byte length, then `{`      | safetensors: canonical (with `config` and `vocab` metadata), or bare tensors with canonical names |
| `PK\\x03\\x04` (a zip)         | libtorch archive of a tensor list (the original program's file), or a `torch.save` zip (state_dict or tensor list) |
| pickle of torch's magic number | the legacy (pre-1.6) `torch.save` format: refused, with how to re-save it |
| anything else                | refused: unknown file type                                    |

What a format does not store comes from the caller, and each choice is said in
the notes:
- n_heads: `heads`, else the config file, else DEFAULT_N_HEADS (4);
- ln_eps, pad_id, mask_value: the config file, else SPEC's defaults;
- vocab_size, d_model, d_ff, n_layers, max_seq_len: read off the tensors' shapes
  (a config file may state them too; they must then agree with the shapes);
- the vocabulary: `vocab_from=(TRAIN, EVAL)` rebuilt exactly as SPEC says, or
  `vocab_file` (a JSON list of words, or one word per line); without either, a
  file that stores none gets placeholder words `[PAD]`, `[ID1]`, `[ID2]`, ... and a
  loud note (or an error, with `allow_placeholder_vocab=False`, which `convert`
  uses unless told `--placeholder-vocab`).
Flags given for a canonical file override what it stores, with a note.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from numpy_ref.checkpoint import Checkpoint, load_checkpoint, validate_params, validate_vocab
from numpy_ref.config import DEFAULT_N_HEADS, ModelConfig
from numpy_ref.errors import CheckpointError, ConfigError
from numpy_ref.schema import block_prefix, parameter_count, parameter_shapes
from numpy_ref.vocab import PAD_WORD, build_vocabulary, read_words

from .restricted_pickle import TorchModule
from .tensors import materialize
from .torch_archive import FORMAT_NAME as ORIGINAL_FORMAT, as_float32, tensor_list_of_module
from .torch_pickle import contents_of
from .torch_zip import read_zip_pickle

CANONICAL_FORMAT = "canonical safetensors"
BARE_SAFETENSORS_FORMAT = "safetensors without the canonical metadata"

LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
CONFIG_FIELDS = [f.name for f in dataclasses.fields(ModelConfig)]
SHAPE_FIELDS = ("vocab_size", "d_model", "d_ff", "n_layers", "max_seq_len")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.default is not dataclasses.MISSING}


@dataclass
class LoadResult:
    checkpoint: Checkpoint
    notes: list
    format: str
    source_dtypes: dict                               # canonical name -> dtype as stored in the file
    config_origin: dict                               # config field -> where its value came from
    vocab_origin: str
    details: dict = field(default_factory=dict)       # folder, byteorder, views, requires_grad, storages


def load_any(path, *, heads=None, vocab_from=None, vocab_file=None, config_file=None,
             allow_placeholder_vocab=True) -> tuple[Checkpoint, list]:
    """Read any supported checkpoint file; return (validated canonical Checkpoint, notes)."""
    result = load_detailed(path, heads=heads, vocab_from=vocab_from, vocab_file=vocab_file,
                           config_file=config_file, allow_placeholder_vocab=allow_placeholder_vocab)
    return result.checkpoint, result.notes


# -- detection -------------------------------------------------------------------------------


def detect_format(path) -> str:
    """'safetensors', 'zip' or 'legacy-torch'; a CheckpointError for anything else."""
    source = str(path)
    target = Path(path)
    if not target.exists():
        raise CheckpointError(f"{source}: no such file.")
    if target.is_dir():
        raise CheckpointError(f"{source}: is a folder; expected a checkpoint file.")
    try:
        size = target.stat().st_size
        with open(target, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise CheckpointError(f"{source}: cannot read the file ({error.strerror or error}).") from None
    if size == 0:
        raise CheckpointError(f"{source}: is empty; expected a checkpoint file.")
    if head.startswith(b"PK"):
        return "zip"
    if head.startswith(LEGACY_TORCH_MAGIC[:4]) and head.startswith(LEGACY_TORCH_MAGIC[: len(head)]):
        return "legacy-torch"
    if len(head) >= 9 and head[8:9] == b"{":
        header_length = int.from_bytes(head[:8], "little")
        if 2 <= header_length <= size - 8:
            return "safetensors"
        if header_length < 1 << 30:
            raise CheckpointError(
                f"{source}: looks like a safetensors file, but its header declares {header_length} bytes and the "
                f"file has only {size - 8} after the length: the file is truncated."
            )
    raise CheckpointError(
        f"{source}: unknown file type (first bytes {head[:8].hex(' ')}): not a safetensors file, not a zip archive "
        f"(libtorch's torch::save or PyTorch's torch.save) and not a legacy torch.save file."
    )


# -- config -----------------------------------------------------------------------------------


def _read_text(path, what: str, error_class) -> str:
    """A UTF-8 side file's text, or `error_class` naming the file and what went wrong."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error_class(f"{path}: no such {what}.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise error_class(f"{path}: cannot read the {what} ({error}).") from None


def read_config_file(config_file) -> dict:
    """A JSON object with some or all of ModelConfig's fields."""
    source = str(config_file)
    text = _read_text(config_file, "config file", ConfigError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}: the config is not valid JSON ({error}).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object of model hyper-parameters, got {type(data).__name__}.")
    unknown = sorted(set(data) - set(CONFIG_FIELDS))
    if unknown:
        raise ConfigError(f"{source}: unknown config field(s) {', '.join(unknown)}; the fields are {', '.join(CONFIG_FIELDS)}.")
    return data


def build_config(stored: dict, origin: dict, *, heads, config_file, source, notes) -> tuple[ModelConfig, dict]:
    """Merge what the file says (`stored`, with `origin`) with the config file, --heads and defaults."""
    values, origin = dict(stored), dict(origin)
    if config_file is not None:
        for name, value in read_config_file(config_file).items():
            if name in values and values[name] != value and origin.get(name) == "the file":
                notes.append(f"{name}: the file says {values[name]}; using {value} from {config_file}")
            values[name], origin[name] = value, f"--config {config_file}"
    if heads is not None:
        if "n_heads" in values and values["n_heads"] != heads and origin.get("n_heads") == "the file":
            notes.append(f"n_heads: the file says {values['n_heads']}; using {heads} from --heads")
        values["n_heads"], origin["n_heads"] = heads, "--heads"
    if "n_heads" not in values:
        values["n_heads"], origin["n_heads"] = DEFAULT_N_HEADS, "default"
        notes.append(f"n_heads is not in the file: using {DEFAULT_N_HEADS} (--heads to change)")
    defaulted = [name for name in ("ln_eps", "pad_id", "mask_value") if name not in values]
    for name in defaulted:
        values[name], origin[name] = _DEFAULTS[name], "default"
    if defaulted:
        notes.append(
            f"{', '.join(defaulted)} not in the file: using SPEC's "
            + ", ".join(f"{name}={_DEFAULTS[name]:g}" for name in defaulted)
            + " (--config FILE to change)"
        )
    try:
        config = ModelConfig(**{name: values[name] for name in CONFIG_FIELDS})
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    return config, origin


# -- shapes -----------------------------------------------------------------------------------


def _shape(array) -> list:
    return list(np.shape(array))


def infer_from_list(arrays: list, source: str) -> tuple[dict, dict]:
    """vocab_size, d_model, d_ff, n_layers, max_seq_len of a tensor list in SPEC's order."""
    count = len(arrays)
    if count < parameter_count(1) or (count - parameter_count(0)) % (parameter_count(1) - parameter_count(0)):
        raise CheckpointError(
            f"{source}: holds {count} tensor(s); the original's file holds 2 + 16 per layer + 2 in SPEC's order "
            f"(20 for 1 layer, 36 for 2, 52 for 3, ...)."
        )
    n_layers = (count - parameter_count(0)) // (parameter_count(1) - parameter_count(0))
    names = list(parameter_shapes(ModelConfig(vocab_size=1, n_layers=n_layers, n_heads=1)))

    def need(index, ndim, pattern):
        shape = _shape(arrays[index])
        if len(shape) != ndim:
            raise CheckpointError(
                f"{source}: tensor {index} ({names[index]} in SPEC's order) has shape {shape}; expected {pattern}."
            )
        return shape

    vocab_size, d_model = need(0, 2, "[V, E]")
    one, max_seq_len, _ = need(1, 3, "[1, T, E]")
    if one != 1:
        raise CheckpointError(f"{source}: tensor 1 (pos_encoding in SPEC's order) has shape {_shape(arrays[1])}; expected [1, T, E].")
    linear1 = names.index(block_prefix(0) + "feed_forward.linear1.weight")
    d_ff, _ = need(linear1, 2, "[F, E]")
    stored = dict(vocab_size=vocab_size, d_model=d_model, d_ff=d_ff, n_layers=n_layers, max_seq_len=max_seq_len)
    return stored, {name: "the tensors' shapes" for name in stored}


def infer_from_names(params: dict, source: str) -> tuple[dict, dict]:
    """The same from a state_dict's canonical names."""
    layers = set()
    for name in params:
        match = re.match(r"layers\.(\d{1,6})\.", name)
        if match:
            layers.add(int(match.group(1)))
    needed = {"embed.weight": 2, "pos_encoding": 3, block_prefix(0) + "feed_forward.linear1.weight": 2}
    for name, ndim in needed.items():
        if name not in params:
            shown = ", ".join(list(params)[:6]) + (" ..." if len(params) > 6 else "")
            raise CheckpointError(
                f"{source}: has no tensor {name!r}, which the config is read from; the tensors must have SPEC's "
                f"canonical names (found: {shown})."
            )
        if np.ndim(params[name]) != ndim:
            raise CheckpointError(f"{source}: tensor {name!r} has shape {_shape(params[name])}; expected {ndim} dimensions.")
    vocab_size, d_model = np.shape(params["embed.weight"])
    max_seq_len = np.shape(params["pos_encoding"])[1]
    d_ff = np.shape(params[block_prefix(0) + "feed_forward.linear1.weight"])[0]
    stored = dict(vocab_size=int(vocab_size), d_model=int(d_model), d_ff=int(d_ff),
                  n_layers=max(layers) + 1, max_seq_len=int(max_seq_len))
    return stored, {name: "the tensors' shapes" for name in stored}


def check_list_shapes(arrays: list, config: ModelConfig, source: str, origin: dict) -> dict:
    """Name the tensors by SPEC's order; each shape must be what the config requires."""
    expected = parameter_shapes(config)
    if len(arrays) != len(expected):
        raise CheckpointError(
            f"{source}: holds {len(arrays)} tensors but a model with n_layers={config.n_layers} "
            f"({origin.get('n_layers')}) has {len(expected)}."
        )
    sizes = (f"V={config.vocab_size}, E={config.d_model}, F={config.d_ff}, T={config.max_seq_len}")
    for index, ((name, shape), array) in enumerate(zip(expected.items(), arrays)):
        if tuple(np.shape(array)) != shape:
            raise CheckpointError(
                f"{source}: tensor {index} should be {name} (SPEC's order of the original file) with shape "
                f"{list(shape)} ({sizes}), but has shape {_shape(array)}."
            )
    return dict(zip(expected, arrays))


# -- vocabulary -------------------------------------------------------------------------------


def read_vocab_file(vocab_file) -> list:
    """A JSON list of words, or a text file with one word per line (id = line number - 1).

    The file is JSON when it starts with `["` (or is `[]`); a first line `[PAD]` is the lines form.
    """
    source = str(vocab_file)
    text = _read_text(vocab_file, "vocabulary file", CheckpointError)
    if re.match(r'\s*\[\s*("|\])', text):  # a JSON list of strings; "[PAD]" on line 1 is the lines form
        try:
            words = json.loads(text)
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{source}: starts like a JSON list but is not valid JSON ({error}).") from None
        if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
            raise CheckpointError(f"{source}: the JSON vocabulary must be a list of strings.")
        return words
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    words = []
    for number, line in enumerate(lines, start=1):
        word = line.strip()
        if not word:
            raise CheckpointError(f"{source}: line {number} is empty; a vocabulary file has one word per line, the word of id N on line N + 1.")
        words.append(word)
    return words


def placeholder_vocab(config: ModelConfig) -> list:
    return [PAD_WORD if i == config.pad_id else f"[ID{i}]" for i in range(config.vocab_size)]


def resolve_vocab(stored, config, source, *, vocab_from, vocab_file, allow_placeholder, notes):
    if vocab_from is not None:
        train, evaluation = vocab_from
        vocab = build_vocabulary(read_words(train), read_words(evaluation))
        vocab = validate_vocab(vocab, config, f"{source} with the vocabulary rebuilt from {train} and {evaluation}")
        origin = f"rebuilt from {train} and {evaluation}"
    elif vocab_file is not None:
        vocab = validate_vocab(read_vocab_file(vocab_file), config, f"{source} with the vocabulary of {vocab_file}")
        origin = f"read from {vocab_file}"
    elif stored is not None:
        return validate_vocab(stored, config, source), "the file"
    elif allow_placeholder:
        notes.append(
            f"NO VOCABULARY: this file does not store one, so the {config.vocab_size} ids get placeholder words "
            f"{PAD_WORD}, [ID1], [ID2], ...; decoded text is meaningless. Pass --vocab-from TRAIN EVAL or --vocab FILE."
        )
        return placeholder_vocab(config), "placeholders"
    else:
        raise CheckpointError(
            f"{source}: this format does not store the vocabulary. Pass --vocab-from TRAIN EVAL (the tokenized "
            f"training and evaluation files; the vocabulary is rebuilt as SPEC says), or --vocab FILE (a JSON list "
            f"of words, or one word per line), or --placeholder-vocab to use words [ID1], [ID2], ... instead."
        )
    if stored is not None:
        notes.append(f"the vocabulary stored in the file is replaced by the one {origin}")
    notes.append(f"vocabulary: {len(vocab)} words {origin}")
    return vocab, origin


# -- the formats ------------------------------------------------------------------------------


def _read_zip(path, source):
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CheckpointError(f"{source}: cannot read the file ({error.strerror or error}).") from None
    archive = read_zip_pickle(data, source)
    if isinstance(archive.root, TorchModule):
        tensors, fmt, notes = tensor_list_of_module(archive), ORIGINAL_FORMAT, []
    else:
        fmt, tensors, notes = contents_of(archive)
    if isinstance(tensors, dict):
        names, refs = list(tensors), list(tensors.values())
    else:
        names, refs = [f"#{i}" for i in range(len(tensors))], tensors
    arrays = [materialize(t, archive.byteorder) for t in refs]
    details = {
        "folder": archive.folder,
        "byteorder": archive.byteorder + ("" if archive.byteorder_recorded else " (not recorded: assumed)"),
        "storages": len(archive.storages),
        "requires_grad": sum(t.requires_grad for t in refs),
        "views": [name for name, t in zip(names, refs) if t.offset != 0 or not t.is_contiguous],
    }
    if archive.byteorder == "big":
        notes.append("the file is big-endian: its bytes were swapped to this machine's order")
    if details["requires_grad"]:
        notes.append(f"{details['requires_grad']} tensor(s) were saved with requires_grad=True (irrelevant here: only the forward pass runs)")
    dtypes = [t.dtype for t in refs]
    if isinstance(tensors, dict):
        return fmt, dict(zip(names, arrays)), dict(zip(names, dtypes)), details, notes
    return fmt, arrays, dtypes, details, notes


def _read_safetensors(path, source):
    import safetensors
    import safetensors.numpy  # noqa: F401  (the numpy framework)

    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            params = {name: handle.get_tensor(name) for name in handle.keys()}
    except (safetensors.SafetensorError, OSError, ValueError, TypeError) as error:
        raise CheckpointError(f"{source}: not a readable safetensors file ({error}).") from None
    return metadata, params


def load_detailed(path, *, heads=None, vocab_from=None, vocab_file=None, config_file=None,
                  allow_placeholder_vocab=True) -> LoadResult:
    """load_any with everything `numpy-ref info` shows."""
    source = str(path)
    kind = detect_format(path)
    notes: list = []
    if kind == "legacy-torch":
        raise CheckpointError(
            f"{source}: is in the legacy torch.save format of PyTorch before 1.6, which is not read here. "
            f"Re-save it with a current PyTorch: torch.save(torch.load(path), new_path)."
        )

    stored_vocab, details = None, {}
    if kind == "safetensors":
        metadata, raw = _read_safetensors(path, source)
        if "config" in metadata and "vocab" in metadata:
            checkpoint = load_checkpoint(path)
            fmt = CANONICAL_FORMAT
            stored = checkpoint.config.to_dict()
            origin = {name: "the file" for name in stored}
            params, stored_vocab = checkpoint.params, checkpoint.vocab
            dtypes = {name: str(array.dtype) for name, array in params.items()}
        else:
            fmt = BARE_SAFETENSORS_FORMAT
            params = {name: np.asarray(array) for name, array in raw.items()}
            dtypes = {name: str(array.dtype) for name, array in params.items()}
            stored, origin = infer_from_names(params, source)
            if "config" in metadata:
                try:
                    file_config = ModelConfig.from_json(metadata["config"], source=f"{source} (metadata 'config')")
                except ConfigError as error:
                    raise CheckpointError(str(error)) from None
                stored = file_config.to_dict()
                origin = {name: "the file" for name in stored}
            else:
                notes.append("the safetensors file has no 'config' metadata: the config is read off the shapes")
            if "vocab" in metadata:
                try:
                    stored_vocab = json.loads(metadata["vocab"])
                except json.JSONDecodeError as error:
                    raise CheckpointError(f"{source}: metadata 'vocab' is not valid JSON ({error}).") from None
        arrays_by_name = params
    else:
        fmt, tensors, dtypes, details, zip_notes = _read_zip(path, source)
        notes += zip_notes
        if isinstance(tensors, list):
            stored, origin = infer_from_list(tensors, source)
        else:
            stored, origin = infer_from_names(tensors, source)
        arrays_by_name = tensors

    config, origin = build_config(stored, origin, heads=heads, config_file=config_file, source=source, notes=notes)
    if isinstance(arrays_by_name, list):
        arrays_by_name = check_list_shapes(arrays_by_name, config, source, origin)
        dtypes = dict(zip(arrays_by_name, dtypes))
    params = validate_params(arrays_by_name, config, source)  # names, shapes, float dtype, finite
    names = list(params)
    dtypes = {name: dtypes.get(name, str(params[name].dtype)) for name in names}
    cast_arrays, cast_notes = as_float32([params[n] for n in names], [dtypes[n] for n in names],
                                         [repr(n) for n in names], source)
    notes += cast_notes
    params = dict(zip(names, cast_arrays))
    vocab, vocab_origin = resolve_vocab(stored_vocab, config, source, vocab_from=vocab_from, vocab_file=vocab_file,
                                        allow_placeholder=allow_placeholder_vocab, notes=notes)
    checkpoint = Checkpoint(config=config, vocab=vocab, params=params)
    return LoadResult(checkpoint, notes, fmt, dtypes, origin, vocab_origin, details)


__all__ = ["LoadResult", "detect_format", "load_any", "load_detailed", "read_config_file", "read_vocab_file"]
