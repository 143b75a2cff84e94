"""A pickle reader that runs no code from the file.

PyTorch checkpoints (the original program's libtorch archive and `torch.save`
files) keep their structure in a pickle, `data.pkl`. An ordinary unpickler
imports and calls whatever the pickle names, so loading an untrusted file that
way can run anything. This reader understands the pickle opcodes but resolves
only the handful of globals that PyTorch's writers use, each mapped to an inert
marker of ours, and it builds objects itself:

- `collections.OrderedDict()`                     -> a plain `OrderedDict`
- `torch._utils._rebuild_tensor_v2(...)`          -> a `TensorRef` (metadata, bounds-checked)
- `torch._utils._rebuild_parameter(...)` (and `_with_state`) -> the same `TensorRef`
- `torch.FloatStorage` and the other typed storages -> a `StorageType` marker
- `__torch__.Module` (libtorch's module of `torch::save(std::vector<Tensor>)`) -> `TorchModule`

Any other global (`os.system`, `builtins.eval`, any class) is refused with a
`CheckpointError` naming the file and the global, before anything is called.
Opcodes that only newer pickle protocols or other writers use and that could
allocate or construct arbitrary objects (INST, OBJ, EXT*, NEWOBJ_EX,
BYTEARRAY8, NEXT_BUFFER, READONLY_BUFFER) are refused as well.

The reader is built on the pure-Python `pickle._Unpickler` because its opcode
table can be replaced: REDUCE, NEWOBJ and BUILD are ours, so nothing of the
file can be called and no attribute of any object or class can be set.
"""

from __future__ import annotations

import io
import pickle
import re
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from numpy_ref.errors import CheckpointError

# Storage class name (as pickled: `torch.<Name>`) -> (NumPy dtype code, PyTorch dtype name).
# bfloat16 has no NumPy dtype: it is read as uint16 and widened to float32 (see tensors.py).
STORAGE_TYPES = {
    "FloatStorage": ("f4", "float32"),
    "DoubleStorage": ("f8", "float64"),
    "HalfStorage": ("f2", "float16"),
    "BFloat16Storage": ("u2", "bfloat16"),
    "LongStorage": ("i8", "int64"),
    "IntStorage": ("i4", "int32"),
    "ShortStorage": ("i2", "int16"),
    "CharStorage": ("i1", "int8"),
    "ByteStorage": ("u1", "uint8"),
    "BoolStorage": ("?", "bool"),
}

# Limits on what one tensor may claim (checked with Python integers before any allocation).
MAX_DIMS = 16
# A tensor whose elements overlap in its storage (a stride of 0: an expanded view) may hold
# more elements than its storage; it may not hold more than this many.
MAX_OVERLAPPING_ELEMENTS = 1 << 20

_STORAGE_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


@dataclass(frozen=True)
class StorageType:
    """What `torch.FloatStorage` and friends resolve to: a dtype, nothing callable."""

    name: str
    numpy_code: str
    torch_dtype: str

    @property
    def itemsize(self) -> int:
        return np.dtype(self.numpy_code).itemsize


@dataclass(frozen=True)
class _Global:
    """A whitelisted global that the pickle may call (through REDUCE or NEWOBJ only)."""

    module: str
    name: str


_ORDERED_DICT = _Global("collections", "OrderedDict")
_REBUILD_TENSOR_V2 = _Global("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = _Global("torch._utils", "_rebuild_parameter")
_REBUILD_PARAMETER_WITH_STATE = _Global("torch._utils", "_rebuild_parameter_with_state")
_TORCH_MODULE = _Global("__torch__", "Module")

_CALLABLE_GLOBALS = {
    ("collections", "OrderedDict"): _ORDERED_DICT,
    ("torch._utils", "_rebuild_tensor_v2"): _REBUILD_TENSOR_V2,
    ("torch._utils", "_rebuild_parameter"): _REBUILD_PARAMETER,
    ("torch._utils", "_rebuild_parameter_with_state"): _REBUILD_PARAMETER_WITH_STATE,
    ("__torch__", "Module"): _TORCH_MODULE,
}


@dataclass
class StorageRef:
    """One storage of the archive: `data/<key>`, its dtype and its raw bytes."""

    key: str
    storage_type: StorageType
    numel: int
    data: bytes


@dataclass
class TensorRef:
    """A tensor as the pickle describes it; `tensors.materialize` turns it into an array."""

    storage: StorageRef
    offset: int
    size: tuple
    stride: tuple
    requires_grad: bool

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.size:
            count *= dim
        return count

    @property
    def dtype(self) -> str:
        return self.storage.storage_type.torch_dtype

    @property
    def is_contiguous(self) -> bool:
        expected = 1
        for dim, step in zip(reversed(self.size), reversed(self.stride)):
            if dim != 1 and step != expected:
                return False
            expected *= dim
        return True


@dataclass
class TorchModule:
    """libtorch's `__torch__.Module` object: its state maps attribute names to values."""

    state: dict = field(default_factory=dict)
    built: bool = False


def describe(value, limit: int = 60) -> str:
    """A short, safe description of an object from the pickle (never a deep repr)."""
    if isinstance(value, (bool, int, float)) or value is None:
        text = repr(value)
    elif isinstance(value, str):
        text = repr(value if len(value) <= limit else value[:limit] + "...")
    elif isinstance(value, _Global):
        return f"the global {value.module}.{value.name}"
    elif isinstance(value, StorageType):
        return f"the storage type torch.{value.name}"
    elif isinstance(value, TensorRef):
        return f"a {value.dtype} tensor of shape {list(value.size)}"
    elif isinstance(value, TorchModule):
        return "a __torch__.Module object"
    elif isinstance(value, (tuple, list, dict, set, frozenset, bytes, bytearray)):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    else:
        return f"an object of type {type(value).__name__}"
    return text if len(text) <= limit + 10 else text[: limit + 10] + "..."


def _global_name(text) -> str:
    """A module or attribute name from the pickle, shown plainly when it looks like one."""
    if isinstance(text, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]{0,80}", text):
        return text
    return describe(text)


def _is_int(value) -> bool:
    return type(value) is int


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickle `data.pkl` of a PyTorch archive without importing or calling anything.

    `read_storage(key, storage_type, numel)` is called for each persistent id
    `('storage', <StorageType>, key, location, numel)`; it returns a StorageRef
    (it reads and checks `data/<key>` of the archive).
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data: bytes, source: str, read_storage):
        super().__init__(io.BytesIO(data))
        self.source = source
        self.read_storage = read_storage
        self.storages: dict[str, StorageRef] = {}

    def fail(self, problem: str):
        raise CheckpointError(f"{self.source}: {problem}")

    # -- globals ---------------------------------------------------------------------------

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_TYPES:
            code, dtype = STORAGE_TYPES[name]
            return StorageType(name, code, dtype)
        found = _CALLABLE_GLOBALS.get((module, name))
        if found is not None:
            return found
        if module == "torch" and isinstance(name, str) and name.endswith("Storage"):
            self.fail(
                f"data.pkl uses the storage type torch.{_global_name(name)}, which this reader does not support "
                f"(supported: {', '.join('torch.' + n for n in STORAGE_TYPES)}). Nothing from the file was run."
            )
        if isinstance(module, str) and module.startswith("__torch__"):
            self.fail(
                f"data.pkl holds a TorchScript object of class {_global_name(module)}.{_global_name(name)}; only the flat tensor list "
                f"that torch::save(std::vector<Tensor>) writes (class __torch__.Module) can be read. "
                f"Nothing from the file was run."
            )
        self.fail(
            f"data.pkl refers to the global {_global_name(module)}.{_global_name(name)}, which a checkpoint has no "
            f"reason to use; refusing to load the file (only PyTorch's tensor and storage rebuilders and "
            f"collections.OrderedDict are allowed). Nothing from the file was run."
        )

    # -- storages ----------------------------------------------------------------------------

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage":
            self.fail(f"data.pkl has a persistent id that is not a storage reference ({describe(pid)}).")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, StorageType):
            self.fail(f"data.pkl names {describe(storage_type)} as a storage type; expected torch.FloatStorage or another typed storage.")
        if not isinstance(key, str) or not _STORAGE_KEY.fullmatch(key):
            self.fail(f"data.pkl has a storage key {describe(key)}; expected a short name such as '0'.")
        if not isinstance(location, str):
            self.fail(f"data.pkl gives storage {key!r} the location {describe(location)}; expected a device name such as 'cpu'.")
        if not _is_int(numel) or numel < 0:
            self.fail(f"data.pkl gives storage {key!r} the element count {describe(numel)}; expected a non-negative integer.")
        known = self.storages.get(key)
        if known is not None:
            if known.storage_type != storage_type or known.numel != numel:
                self.fail(
                    f"storage {key!r} is referenced twice with different types or sizes "
                    f"(torch.{known.storage_type.name} of {known.numel} and torch.{storage_type.name} of {numel})."
                )
            return known
        storage = self.read_storage(key, storage_type, numel)
        self.storages[key] = storage
        return storage

    # -- calls: only the whitelisted globals, built by us -------------------------------------

    def _rebuild_tensor(self, args) -> TensorRef:
        if len(args) not in (6, 7):
            self.fail(f"data.pkl calls torch._utils._rebuild_tensor_v2 with {len(args)} arguments; expected 6 or 7.")
        storage, offset, size, stride, requires_grad = args[:5]
        if not isinstance(storage, StorageRef):
            self.fail(f"data.pkl rebuilds a tensor from {describe(storage)} instead of a storage.")
        if not isinstance(size, tuple) or not isinstance(stride, tuple):
            self.fail(f"data.pkl gives a tensor of storage {storage.key!r} a size or stride that is not a tuple.")
        if len(size) > MAX_DIMS or len(size) != len(stride):
            self.fail(
                f"data.pkl gives a tensor of storage {storage.key!r} {len(size)} sizes and {len(stride)} strides; "
                f"they must be equal in number (at most {MAX_DIMS})."
            )
        if not all(_is_int(v) and v >= 0 for v in size + stride) or not _is_int(offset) or offset < 0:
            self.fail(
                f"data.pkl gives a tensor of storage {storage.key!r} a size, stride or offset that is not a "
                f"non-negative integer (size {describe(size)}, stride {describe(stride)}, offset {describe(offset)})."
            )
        if not isinstance(requires_grad, bool):
            self.fail(f"data.pkl gives a tensor of storage {storage.key!r} requires_grad={describe(requires_grad)}; expected True or False.")
        tensor = TensorRef(storage, offset, size, stride, requires_grad)
        numel = tensor.numel
        if numel > 0:
            last = offset + sum((dim - 1) * step for dim, step in zip(size, stride))
            if last >= storage.numel:
                self.fail(
                    f"a tensor of shape {list(size)} with stride {list(stride)} and storage offset {offset} reaches "
                    f"element {last} of storage {storage.key!r}, which holds only {storage.numel} element(s)."
                )
            if numel > storage.numel and numel > MAX_OVERLAPPING_ELEMENTS:
                self.fail(
                    f"a tensor of shape {list(size)} has {numel} elements, more than its storage {storage.key!r} "
                    f"holds ({storage.numel}) and more than {MAX_OVERLAPPING_ELEMENTS} (an expanded view that large is refused)."
                )
        return tensor

    def _call(self, func, args):
        if not isinstance(args, tuple):
            self.fail(f"data.pkl calls {describe(func)} with arguments that are not a tuple.")
        if func is _ORDERED_DICT:
            if args:
                self.fail("data.pkl calls collections.OrderedDict with arguments; PyTorch's writers call it with none.")
            return OrderedDict()
        if func is _REBUILD_TENSOR_V2:
            return self._rebuild_tensor(args)
        if func in (_REBUILD_PARAMETER, _REBUILD_PARAMETER_WITH_STATE):
            expected = 3 if func is _REBUILD_PARAMETER else 4
            if len(args) != expected or not isinstance(args[0], TensorRef) or not isinstance(args[1], bool):
                self.fail(f"data.pkl calls torch._utils.{func.name} with unexpected arguments.")
            tensor = args[0]
            tensor.requires_grad = args[1]
            return tensor
        self.fail(f"data.pkl calls {describe(func)}, which cannot be called.")

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        self.stack[-1] = self._call(func, args)

    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls is not _TORCH_MODULE or args != ():
            self.fail(f"data.pkl creates an object of {describe(cls)}; only __torch__.Module (without arguments) is expected.")
        self.append(TorchModule())

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_build(self):
        state = self.stack.pop()
        target = self.stack[-1]
        if isinstance(target, TorchModule):
            if target.built or not isinstance(state, dict):
                self.fail(f"data.pkl sets the state of the __torch__.Module to {describe(state)}; expected one dict.")
            target.state = state
            target.built = True
        elif isinstance(target, OrderedDict):
            # torch.save of a state_dict sets its `_metadata` attribute: we do not need it.
            if not isinstance(state, dict):
                self.fail(f"data.pkl sets the state of an OrderedDict to {describe(state)}; expected a dict.")
        else:
            self.fail(f"data.pkl sets the state of {describe(target)}, which is not allowed.")

    dispatch[pickle.BUILD[0]] = load_build

    for _name in ("INST", "OBJ", "EXT1", "EXT2", "EXT4", "NEWOBJ_EX", "BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"):
        _code = getattr(pickle, _name, None)
        if _code is not None:
            dispatch[_code[0]] = (lambda name: lambda self: self.fail(
                f"data.pkl uses the pickle opcode {name}, which PyTorch's writers never use; refusing to load the file."
            ))(_name)
    del _name, _code


def restricted_load(data: bytes, source: str, read_storage):
    """Unpickle `data` (the bytes of data.pkl); any failure is a CheckpointError naming `source`."""
    unpickler = RestrictedUnpickler(data, source, read_storage)
    try:
        return unpickler.load()
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"{source}: data.pkl is nested too deeply to be a checkpoint's pickle.") from None
    except MemoryError:
        raise CheckpointError(f"{source}: data.pkl asks for more memory than a checkpoint's pickle can need.") from None
    except Exception as error:  # the pickle is untrusted input: every parse failure is a bad file
        raise CheckpointError(
            f"{source}: data.pkl is not a valid pickle ({type(error).__name__}: {str(error)[:200]})."
        ) from None
