"""Checkpoint conversion: every format this project reads, into the canonical safetensors file.

    from conversion import load_any
    checkpoint, notes = load_any(path, heads=None, vocab_from=None, vocab_file=None, config_file=None)

Formats (told by content, not by name): canonical safetensors; bare safetensors
with canonical names; the original program's libtorch archive (torch::save of a
tensor list); PyTorch torch.save zip files (a state_dict or a tensor list). The
PyTorch formats are read without torch and without running anything from the
file (restricted_pickle.py). See load.py for what is inferred and what is noted.
"""

from .load import LoadResult, detect_format, load_any, load_detailed
from .torch_archive import OriginalFile, read_original

__all__ = ["LoadResult", "OriginalFile", "detect_format", "load_any", "load_detailed", "read_original"]
