"""PyTorch `torch.save` files (the zip format of PyTorch >= 1.6), read without torch.

What torch 2.13 writes for `torch.save(model.state_dict(), "x.pt")` (checked with
pickletools): a zip whose members sit under `x/` (the stem at save time):
`data.pkl`, `data/<key>`, `byteorder`, `version`, `.format_version`,
`.storage_alignment`, `.data/serialization_id`. data.pkl (protocol 2) is

    GLOBAL 'collections OrderedDict' EMPTY_TUPLE REDUCE
    MARK 'embed.weight' _rebuild_tensor_v2(PERSID('storage', torch.FloatStorage, '0', 'cpu', numel),
                                           offset, size, stride, requires_grad, OrderedDict()) ... SETITEMS
    [BUILD {'_metadata': ...}]

so the same restricted reader serves: typed storage classes (torch.FloatStorage, ...)
still appear in the persistent ids. Accepted roots:

- a dict of canonical name -> tensor (a state_dict);
- a dict holding such a state_dict under "state_dict", "model_state_dict" or "model";
- a list or tuple of tensors, taken in the original file's order (SPEC).
"""

from __future__ import annotations

from numpy_ref.errors import CheckpointError

from .restricted_pickle import TensorRef, describe
from .torch_zip import ZipPickle

STATE_DICT_FORMAT = "torch.save zip of a state_dict"
TENSOR_LIST_FORMAT = "torch.save zip of a tensor list"
NESTED_KEYS = ("state_dict", "model_state_dict", "model")


def _is_state_dict(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(
        isinstance(k, str) and isinstance(v, TensorRef) for k, v in value.items()
    )


def contents_of(archive: ZipPickle):
    """(format name, dict name -> TensorRef or list of TensorRef, notes)."""
    source, root = archive.source, archive.root
    if isinstance(root, (list, tuple)):
        if not root or not all(isinstance(item, TensorRef) for item in root):
            raise CheckpointError(f"{source}: holds {describe(root)} that are not all tensors; expected a state_dict or a list of tensors.")
        return TENSOR_LIST_FORMAT, list(root), ["a list of tensors: mapped to canonical names by SPEC's order of the original file"]
    if isinstance(root, dict):
        if _is_state_dict(root):
            return STATE_DICT_FORMAT, dict(root), []
        for key in NESTED_KEYS:
            if _is_state_dict(root.get(key)):
                return STATE_DICT_FORMAT, dict(root[key]), [f"took the state_dict stored under the key {key!r}"]
        bad = next(((k, v) for k, v in root.items() if not (isinstance(k, str) and isinstance(v, TensorRef))), None)
        if bad is None:
            raise CheckpointError(f"{source}: holds an empty dict; expected a state_dict of the model's tensors.")
        raise CheckpointError(
            f"{source}: holds a dict whose entry {describe(bad[0])} is {describe(bad[1])}; expected a state_dict "
            f"(canonical name -> tensor), or one under the key 'state_dict'."
        )
    raise CheckpointError(f"{source}: holds {describe(root)}; expected a state_dict (canonical name -> tensor) or a list of tensors.")
