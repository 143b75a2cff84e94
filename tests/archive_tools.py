"""Helpers that take PyTorch zip archives apart and put them back together (tests and fixtures).

    python tests/archive_tools.py big-endian SRC DST
    python tests/archive_tools.py state-dict ORIGINAL DST

The first writes DST: SRC with its `byteorder` record set to "big" and every storage's
elements byte-swapped (each by its own dtype's width, found by reading SRC's
data.pkl with conversion's restricted reader). `make fixture` makes the
big-endian fixtures this way: libtorch on this (little-endian) machine cannot
write them itself. The second (which needs torch) writes a `torch.save`d state_dict
with canonical names and the values of the original-format file ORIGINAL.

The pickle helpers (`Pickle`) assemble data.pkl by hand, opcode by opcode, for
the bad-input tests.
"""

from __future__ import annotations

import struct
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIXED_DATE = (2024, 1, 1, 0, 0, 0)


def read_members(path) -> "OrderedDict[str, bytes]":
    with zipfile.ZipFile(path) as archive:
        return OrderedDict((info.filename, archive.read(info)) for info in archive.infolist())


def write_members(path, members) -> None:
    """A zip with the members in order, stored uncompressed, with fixed timestamps (reproducible)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, data)


def archive_bytes(members) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            archive.writestr(info, data)
    return buffer.getvalue()


def folder_of(members) -> str:
    return next(name[: -len("/data.pkl")] for name in members if name.endswith("/data.pkl"))


def storage_dtypes(path) -> dict:
    """Storage key -> NumPy dtype code, read with conversion's restricted reader."""
    from conversion.torch_zip import read_zip_pickle

    archive = read_zip_pickle(Path(path).read_bytes(), str(path))
    return {key: storage.storage_type.numpy_code for key, storage in archive.storages.items()}


def to_big_endian(src, dst) -> None:
    import numpy as np

    members = read_members(src)
    folder = folder_of(members)
    assert members.get(f"{folder}/byteorder", b"little") == b"little", "the source must be little-endian"
    for key, code in storage_dtypes(src).items():
        name = f"{folder}/data/{key}"
        little = np.frombuffer(members[name], dtype=np.dtype(code).newbyteorder("<"))
        members[name] = little.astype(little.dtype.newbyteorder(">")).tobytes()
    members[f"{folder}/byteorder"] = b"big"
    write_members(dst, members)


class Pickle:
    """Assemble a protocol-2 pickle opcode by opcode (enough for torch's data.pkl and its forgeries)."""

    def __init__(self):
        self.parts = [b"\x80\x02"]

    def raw(self, data: bytes) -> "Pickle":
        self.parts.append(data)
        return self

    def global_(self, module: str, name: str) -> "Pickle":
        return self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def text(self, value: str) -> "Pickle":
        data = value.encode()
        return self.raw(b"X" + struct.pack("<I", len(data)) + data)

    def int_(self, value: int) -> "Pickle":
        if 0 <= value < 256:
            return self.raw(b"K" + bytes([value]))
        if -2**31 <= value < 2**31:
            return self.raw(b"J" + struct.pack("<i", value))
        data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return self.raw(b"\x8a" + bytes([len(data)]) + data)  # LONG1

    def mark(self) -> "Pickle":
        return self.raw(b"(")

    def tuple_(self) -> "Pickle":
        return self.raw(b"t")

    def empty_tuple(self) -> "Pickle":
        return self.raw(b")")

    def empty_dict(self) -> "Pickle":
        return self.raw(b"}")

    def reduce(self) -> "Pickle":
        return self.raw(b"R")

    def newobj(self) -> "Pickle":
        return self.raw(b"\x81")

    def build(self) -> "Pickle":
        return self.raw(b"b")

    def setitems(self) -> "Pickle":
        return self.raw(b"u")

    def binpersid(self) -> "Pickle":
        return self.raw(b"Q")

    def bool_(self, value: bool) -> "Pickle":
        return self.raw(b"\x88" if value else b"\x89")

    def ints(self, values) -> "Pickle":
        self.mark()
        for value in values:
            self.int_(value)
        return self.tuple_()

    def tensor(self, key: str, storage_type: str, numel: int, offset: int, size, stride,
               requires_grad=False, storage_global=None) -> "Pickle":
        """_rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, rg, OrderedDict())."""
        self.global_("torch._utils", "_rebuild_tensor_v2").mark()
        self.mark().text("storage")
        if storage_global is None:
            self.global_("torch", storage_type)
        else:
            self.global_(*storage_global)
        self.text(key).text("cpu").int_(numel).tuple_().binpersid()
        self.int_(offset).ints(size).ints(stride).bool_(requires_grad)
        self.global_("collections", "OrderedDict").empty_tuple().reduce()
        return self.tuple_().reduce()

    def stop(self) -> bytes:
        return b"".join(self.parts) + b"."


def module_pickle(tensors, module=("__torch__", "Module"), extra_items=b"") -> bytes:
    """A data.pkl like libtorch's: a Module whose state maps '0', '1', ... to tensors.

    `tensors` is a list of dicts of Pickle.tensor's keyword arguments; `extra_items` is raw
    opcode bytes pushing more (key, value) pairs inside the state dict's SETITEMS.
    """
    p = Pickle().global_(*module).empty_tuple().newobj().empty_dict().mark()
    for index, spec in enumerate(tensors):
        p.text(str(index)).tensor(**spec)
    p.raw(extra_items)
    return p.setitems().build().stop()


def write_state_dict(src, dst) -> None:
    """torch.save of a state_dict with canonical names and the values of the original file SRC (needs torch)."""
    import torch

    from conversion import read_original
    from numpy_ref.config import ModelConfig
    from numpy_ref.schema import parameter_shapes

    original = read_original(src)
    n_layers = (len(original.arrays) - 4) // 16
    names = parameter_shapes(ModelConfig(vocab_size=1, n_layers=n_layers, n_heads=1))
    state = OrderedDict((name, torch.from_numpy(array.copy())) for name, array in zip(names, original.arrays))
    torch.save(state, dst)


USAGE = ("usage: python tests/archive_tools.py big-endian SRC DST\n"
         "       python tests/archive_tools.py state-dict ORIGINAL DST   (needs torch)")


def main(argv) -> int:
    if len(argv) == 3 and argv[0] == "big-endian":
        to_big_endian(argv[1], argv[2])
        print(f"wrote {argv[2]} (big-endian copy of {argv[1]})")
        return 0
    if len(argv) == 3 and argv[0] == "state-dict":
        write_state_dict(argv[1], argv[2])
        print(f"wrote {argv[2]} (torch.save of a state_dict with the values of {argv[1]})")
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
