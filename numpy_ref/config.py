"""The model configuration: every hyper-parameter of SPEC, validated once.

The defaults are the original Haskell program's (SPEC "Hyper-parameters"); any
other valid values describe a model of the same architecture.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from .errors import ConfigError

# Heads cannot be read off a checkpoint's shapes; a loader without a config uses this.
DEFAULT_N_HEADS = 4


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int           # V: rows of the embedding and of the unembedding
    d_model: int = 64         # E: width of the residual stream (embedDim)
    n_heads: int = DEFAULT_N_HEADS  # H: attention heads; head_dim D = E / H
    d_ff: int = 256           # F: hidden width of the feed-forward (ffnDim)
    n_layers: int = 2         # L: decoder blocks (numAttnLayers)
    max_seq_len: int = 64     # T: rows of the positional encoding (seqLen)
    ln_eps: float = 1e-5      # added to the variance inside the square root
    pad_id: int = 0           # paddingIdx; also the id of unknown words
    mask_value: float = -1e9  # added (not -inf) above the diagonal of the scores

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_heads", "d_ff", "n_layers", "max_seq_len", "pad_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"config field {name!r} must be an integer, got {value!r}.")
        for name in ("vocab_size", "d_model", "n_heads", "d_ff", "n_layers", "max_seq_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"config field {name!r} must be at least 1, got {getattr(self, name)}.")
        if self.d_model % self.n_heads != 0:
            raise ConfigError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads}): each head "
                f"takes d_model / n_heads columns of q, k and v."
            )
        if not 0 <= self.pad_id < self.vocab_size:
            raise ConfigError(f"pad_id ({self.pad_id}) must be an id of the vocabulary (0 to {self.vocab_size - 1}).")
        for name in ("ln_eps", "mask_value"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"config field {name!r} must be a finite number, got {value!r}.")
        if self.ln_eps <= 0:
            raise ConfigError(f"ln_eps must be positive, got {self.ln_eps}.")
        if self.mask_value >= 0:
            raise ConfigError(f"mask_value must be negative (it is added to masked scores), got {self.mask_value}.")
        # Store floats as floats, so that to_dict() round-trips exactly.
        object.__setattr__(self, "ln_eps", float(self.ln_eps))
        object.__setattr__(self, "mask_value", float(self.mask_value))

    @property
    def head_dim(self) -> int:
        """D = E / H: the width of one attention head."""
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "ModelConfig":
        """Build a config from a mapping with exactly the fields of ModelConfig."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object with the model's hyper-parameters, got {type(data).__name__}.")
        fields = [field.name for field in dataclasses.fields(cls)]
        missing = [name for name in fields if name not in data]
        unknown = sorted(set(data) - set(fields))
        if missing or unknown:
            raise ConfigError(
                f"{source}: the config must have exactly the fields {', '.join(fields)}; "
                + (f"missing {', '.join(missing)}" if missing else "")
                + ("; " if missing and unknown else "")
                + (f"unknown {', '.join(unknown)}" if unknown else "")
                + "."
            )
        try:
            return cls(**data)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    @classmethod
    def from_json(cls, text: str, source: str = "config") -> "ModelConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{source}: the config is not valid JSON ({error}).") from None
        return cls.from_dict(data, source)
