"""numpy_ref: a pure-NumPy reference of a small decoder-only transformer.

    import numpy_ref
    model = numpy_ref.load("data/model.safetensors", dtype="float64")
    logits = model(ids)                         # ids: int array [B, S] -> [B, S, V]
    logits, trace = model.run_with_trace(ids)   # trace: SPEC name -> array, in order

Only NumPy (and safetensors' NumPy API, for files) is imported here: the
reference runs where PyTorch is not installed.
"""

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .config import ModelConfig
from .errors import CheckpointError, ConfigError, InputError, NumpyRefError
from .model import Model, load
from .schema import parameter_shapes, trace_names

__all__ = [
    "Checkpoint", "CheckpointError", "ConfigError", "InputError", "Model", "ModelConfig",
    "NumpyRefError", "load", "load_checkpoint", "parameter_shapes", "save_checkpoint", "trace_names",
]
