"""The zip container shared by libtorch archives and `torch.save` files.

Both put their members under one top folder (the file's stem when it was saved,
which need not be its name now: we look for `<folder>/data.pkl`, never assume
the folder), with

    <folder>/data.pkl     the pickle (protocol 2) describing the object
    <folder>/data/<key>   the raw bytes of each storage
    <folder>/byteorder    "little" or "big" (absent in older files: little)

plus members we do not need (`version`, `code/`, `constants.pkl`,
`.data/serialization_id`, `.format_version`, ...). Nothing is extracted to disk;
every member's declared size is checked before it is read.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

from numpy_ref.errors import CheckpointError

from .restricted_pickle import StorageRef, StorageType, restricted_load

# Errors that Python's zipfile (and zlib under it) raise on a damaged archive.
ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
    NotImplementedError, RuntimeError, struct.error, OverflowError, UnicodeError, KeyError, IndexError,
)

MAX_PICKLE_BYTES = 64 << 20     # data.pkl of a checkpoint is a few KB
MAX_MEMBER_BYTES = 4 << 30      # one storage
MAX_DEFLATE_RATIO = 1100        # deflate cannot expand more than ~1032:1
MAX_BYTEORDER_BYTES = 16


@dataclass
class ZipPickle:
    """The unpickled root object of an archive and what was learned on the way."""

    source: str
    folder: str
    byteorder: str
    byteorder_recorded: bool
    root: object
    members: list
    storages: dict


def _fail(source: str, problem: str):
    raise CheckpointError(f"{source}: {problem}")


class _Archive:
    def __init__(self, data: bytes, source: str):
        self.source = source
        self.size = len(data)
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            self.infos = {info.filename: info for info in self.zip.infolist()}
        except ZIP_ERRORS as error:
            _fail(source, f"is not a readable zip archive ({type(error).__name__}: {str(error)[:200]}); "
                          f"the file may be truncated or damaged.")

    def read(self, name: str, limit: int) -> bytes:
        info = self.infos.get(name)
        if info is None:
            _fail(self.source, f"the zip archive has no member {name!r}.")
        if info.flag_bits & 0x1:
            _fail(self.source, f"the zip member {name!r} is encrypted.")
        if info.file_size > limit:
            _fail(self.source, f"the zip member {name!r} declares {info.file_size} bytes, more than the {limit} "
                               f"that such a member may hold.")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size or info.header_offset + info.compress_size > self.size:
                _fail(self.source, f"the zip member {name!r} declares {info.file_size} bytes that the archive "
                                   f"({self.size} bytes) cannot hold; the file may be truncated.")
        elif info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 1024:
            _fail(self.source, f"the zip member {name!r} declares {info.file_size} bytes from {info.compress_size} "
                               f"compressed bytes, more than compression can produce.")
        try:
            data = self.zip.read(info)
        except ZIP_ERRORS as error:
            _fail(self.source, f"cannot read the zip member {name!r} ({type(error).__name__}: {str(error)[:200]}); "
                               f"the file may be truncated or damaged.")
        if len(data) != info.file_size:
            _fail(self.source, f"the zip member {name!r} holds {len(data)} bytes but declares {info.file_size}.")
        return data


def find_folder(names, source: str) -> str:
    """The top folder holding data.pkl: exactly one member must be `<folder>/data.pkl`."""
    candidates = sorted({name[: -len("/data.pkl")] for name in names
                         if name.endswith("/data.pkl") and name.count("/") == 1 and len(name) > len("/data.pkl")})
    if not candidates:
        shown = ", ".join(repr(name) for name in list(names)[:5]) or "none"
        _fail(source, f"is a zip archive without a '<folder>/data.pkl' member, so it is not a PyTorch or libtorch "
                      f"checkpoint (members: {shown}{' ...' if len(names) > 5 else ''}).")
    if len(candidates) > 1:
        _fail(source, f"has {len(candidates)} top folders with a data.pkl ({', '.join(map(repr, candidates[:5]))}); "
                      f"a checkpoint has exactly one.")
    return candidates[0]


def read_zip_pickle(data: bytes, source: str) -> ZipPickle:
    """Open the archive, read its byte order, and unpickle data.pkl with the restricted reader."""
    archive = _Archive(data, source)
    folder = find_folder(list(archive.infos), source)

    byteorder_name = f"{folder}/byteorder"
    recorded = byteorder_name in archive.infos
    byteorder = "little"
    if recorded:
        raw = archive.read(byteorder_name, MAX_BYTEORDER_BYTES)
        byteorder = raw.decode("ascii", errors="replace").strip()
        if byteorder not in ("little", "big"):
            _fail(source, f"the member {byteorder_name!r} says {byteorder[:20]!r}; expected 'little' or 'big'.")

    storages: dict = {}

    def read_storage(key: str, storage_type: StorageType, numel: int) -> StorageRef:
        name = f"{folder}/data/{key}"
        if name not in archive.infos:
            _fail(source, f"data.pkl refers to storage {key!r} but the archive has no member {name!r}; "
                          f"the file is incomplete.")
        expected = numel * storage_type.itemsize
        declared = archive.infos[name].file_size
        if declared != expected:
            _fail(source, f"storage {key!r} ({name!r}) holds {declared} bytes, but data.pkl says it has {numel} "
                          f"{storage_type.torch_dtype} elements ({expected} bytes).")
        storage = StorageRef(key, storage_type, numel, archive.read(name, MAX_MEMBER_BYTES))
        storages[key] = storage
        return storage

    pickle_bytes = archive.read(f"{folder}/data.pkl", MAX_PICKLE_BYTES)
    root = restricted_load(pickle_bytes, source, read_storage)
    return ZipPickle(source, folder, byteorder, recorded, root, list(archive.infos), storages)
