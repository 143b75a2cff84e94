"""The original program's checkpoint: a libtorch archive of a flat tensor list.

hasktorch's `Serialize.save` calls libtorch's `torch::save(std::vector<at::Tensor>, path)`,
which wraps the tensors in a TorchScript module and exports it. What that writes
(verified with pickletools on files from tools/write_original, libtorch 2.13):

    <stem>/data.pkl        protocol 2:
                             GLOBAL '__torch__ Module'  EMPTY_TUPLE NEWOBJ
                             EMPTY_DICT MARK
                               '0' _rebuild_tensor_v2(PERSID('storage', torch.FloatStorage, '0', 'cpu', numel),
                                                      offset, size, stride, requires_grad, OrderedDict())
                               '1' ...
                             SETITEMS BUILD
    <stem>/data/<key>      each storage's bytes (keys count storages, not tensors: two
                           tensors that share a storage share a key)
    <stem>/byteorder       "little" (or "big")
    <stem>/code/__torch__.py, constants.pkl, version, .data/serialization_id: not needed

`<stem>` is the file's stem at save time. Strides and storage offsets are stored as
they were (a transposed or narrowed tensor keeps its view), and requires_grad is
saved. The state's keys are the tensors' positions as decimal strings: they are
ordered by number ("2" before "10"). Read without torch: see restricted_pickle.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numpy_ref.errors import CheckpointError

from .restricted_pickle import TensorRef, TorchModule, describe
from .tensors import materialize
from .torch_zip import ZipPickle, read_zip_pickle

FORMAT_NAME = "libtorch archive of a tensor list (torch::save(std::vector<Tensor>), the original program's format)"

_POSITION = re.compile(r"0|[1-9][0-9]{0,8}")


@dataclass
class OriginalFile:
    """The tensors of an original checkpoint, in file order, as NumPy arrays of their own dtype."""

    path: str
    folder: str
    byteorder: str
    arrays: list            # np.ndarray per tensor (bfloat16 widened to float32)
    dtypes: list            # PyTorch dtype name per tensor, as stored
    requires_grad: list     # bool per tensor
    views: list             # True where the tensor was stored non-contiguous or at an offset


def tensor_list_of_module(archive: ZipPickle) -> list[TensorRef]:
    """The tensors of a `__torch__.Module` state, ordered by their numeric keys."""
    source = archive.source
    root = archive.root
    if not isinstance(root, TorchModule) or not root.built:
        raise CheckpointError(
            f"{source}: data.pkl holds {describe(root)}, not the __torch__.Module object that "
            f"torch::save(std::vector<Tensor>) writes."
        )
    positions = {}
    for key, value in root.state.items():
        if not isinstance(key, str) or not _POSITION.fullmatch(key):
            raise CheckpointError(
                f"{source}: the module's state has the key {describe(key)}; a tensor list saved by "
                f"torch::save has only the keys '0', '1', ... (the tensors' positions)."
            )
        if not isinstance(value, TensorRef):
            raise CheckpointError(f"{source}: the module's entry {key!r} is {describe(value)}, not a tensor.")
        positions[int(key)] = value
    count = len(positions)
    missing = [i for i in range(count) if i not in positions]
    if missing:
        raise CheckpointError(
            f"{source}: the module's tensors are numbered {sorted(positions)[:8]}...; position {missing[0]} is "
            f"missing (a tensor list is numbered 0 to {count - 1} without gaps)."
        )
    return [positions[i] for i in range(count)]


def read_original(path) -> OriginalFile:
    """Read an original checkpoint file without torch: each tensor in its stored dtype."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CheckpointError(f"{source}: cannot read the file ({error.strerror or error}).") from None
    archive = read_zip_pickle(data, source)
    tensors = tensor_list_of_module(archive)
    return OriginalFile(
        path=source,
        folder=archive.folder,
        byteorder=archive.byteorder,
        arrays=[materialize(t, archive.byteorder) for t in tensors],
        dtypes=[t.dtype for t in tensors],
        requires_grad=[t.requires_grad for t in tensors],
        views=[t.offset != 0 or not t.is_contiguous for t in tensors],
    )


def as_float32(arrays, dtypes, names, source) -> tuple[list, list]:
    """Cast float16/bfloat16/float64 arrays to float32; refuse other dtypes. Returns (arrays, notes)."""
    out, cast = [], {}
    for array, dtype, name in zip(arrays, dtypes, names):
        if dtype == "float32":
            out.append(array)
            continue
        if dtype not in ("float16", "bfloat16", "float64"):
            raise CheckpointError(
                f"{source}: tensor {name} is stored as {dtype}; model weights must be floating point "
                f"(float32, float64, float16 or bfloat16)."
            )
        with np.errstate(over="ignore", invalid="ignore"):
            converted = array.astype(np.float32)
        if np.all(np.isfinite(array)) and not np.all(np.isfinite(converted)):
            raise CheckpointError(f"{source}: tensor {name} holds {dtype} values beyond float32's range.")
        out.append(converted)
        cast[dtype] = cast.get(dtype, 0) + 1
    notes = [f"cast {count} tensor(s) from {dtype} to float32 (the canonical dtype)"
             + (": float64 values are rounded" if dtype == "float64" else "")
             for dtype, count in cast.items()]
    return out, notes
