"""NumPy arrays from the tensors a PyTorch pickle describes.

The restricted unpickler has already checked every size, stride and offset
against its storage with Python integers (so nothing here can read outside the
storage's bytes or allocate more than the storage's size, or 2**20 elements for
an expanded view). Here the bytes become a strided view (`as_strided`, in the
archive's byte order) that is copied at once into a new native-endian array.
"""

from __future__ import annotations

import numpy as np

from .restricted_pickle import MAX_OVERLAPPING_ELEMENTS, TensorRef


def materialize(tensor: TensorRef, byteorder: str = "little") -> np.ndarray:
    """A fresh, contiguous, native-endian array with the tensor's values.

    bfloat16 tensors come back as float32 (exactly: bfloat16 is the upper half of a float32).
    """
    storage = tensor.storage
    code = storage.storage_type.numpy_code
    stored = np.dtype(code).newbyteorder("<" if byteorder == "little" else ">")
    native = stored.newbyteorder("=")
    size = tuple(tensor.size)
    numel = tensor.numel
    if numel == 0:
        out = np.zeros(size, dtype=native)
    else:
        # Re-check the invariants the unpickler established: this function must never read
        # outside the storage, whoever built the TensorRef.
        last = tensor.offset + sum((dim - 1) * step for dim, step in zip(size, tensor.stride))
        if last >= storage.numel or len(storage.data) < storage.numel * stored.itemsize:
            raise ValueError("tensor reaches outside its storage")
        if numel > storage.numel and numel > MAX_OVERLAPPING_ELEMENTS:
            raise ValueError("tensor too large for its storage")
        flat = np.frombuffer(storage.data, dtype=stored, count=storage.numel)
        strides = tuple(step * stored.itemsize for step in tensor.stride)
        view = np.lib.stride_tricks.as_strided(flat[tensor.offset:], shape=size, strides=strides, writeable=False)
        out = np.array(view, dtype=native, copy=True, order="C")
    if storage.storage_type.torch_dtype == "bfloat16":
        out = (out.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return out
