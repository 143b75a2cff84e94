"""torch_model: the same decoder in PyTorch (for parity checks and training), and an
independent oracle built from PyTorch's stock nn.TransformerEncoderLayer."""

from .model import Decoder
from .oracle import StockDecoder

__all__ = ["Decoder", "StockDecoder"]
