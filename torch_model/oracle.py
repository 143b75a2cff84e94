"""An independent oracle: the same weights in PyTorch's stock layers.

nn.TransformerEncoderLayer with norm_first=False (post-norm), ReLU, dropout 0 and
an additive float mask of -1e9 above the diagonal is exactly one block of SPEC;
its attention takes q, k and v as one in_proj matrix (their concatenation). The
two hand-written implementations could share a misreading of SPEC; this one was
written by other people, so agreement with it at every block output and at the
logits is evidence of a different kind.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from numpy_ref.config import ModelConfig
from numpy_ref.schema import block_prefix


class StockDecoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_encoding = nn.Parameter(torch.zeros(1, config.max_seq_len, config.d_model))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model=config.d_model, nhead=config.n_heads, dim_feedforward=config.d_ff,
                dropout=0.0, activation="relu", layer_norm_eps=config.ln_eps,
                batch_first=True, norm_first=False,
            )
            for _ in range(config.n_layers)
        )
        self.final_layer = nn.Linear(config.d_model, config.vocab_size)

    @property
    def recorded_names(self) -> set:
        """The trace names forward() records: embed.out, each block's output, logits."""
        return {"embed.out", "logits", *(block_prefix(i) + "norm2" for i in range(self.config.n_layers))}

    @classmethod
    def from_params(cls, config: ModelConfig, params: dict, dtype=torch.float32) -> "StockDecoder":
        def t(name):
            return torch.from_numpy(np.ascontiguousarray(params[name])).to(dtype)

        model = cls(config).to(dtype)
        with torch.no_grad():
            model.embed.weight.copy_(t("embed.weight"))
            model.pos_encoding.copy_(t("pos_encoding"))
            for i, layer in enumerate(model.layers):
                p = block_prefix(i)
                attention = layer.self_attn
                attention.in_proj_weight.copy_(torch.cat([t(p + f"attention.{n}.weight") for n in "qkv"]))
                attention.in_proj_bias.copy_(torch.cat([t(p + f"attention.{n}.bias") for n in "qkv"]))
                attention.out_proj.weight.copy_(t(p + "attention.out.weight"))
                attention.out_proj.bias.copy_(t(p + "attention.out.bias"))
                layer.linear1.weight.copy_(t(p + "feed_forward.linear1.weight"))
                layer.linear1.bias.copy_(t(p + "feed_forward.linear1.bias"))
                layer.linear2.weight.copy_(t(p + "feed_forward.linear2.weight"))
                layer.linear2.bias.copy_(t(p + "feed_forward.linear2.bias"))
                layer.norm1.weight.copy_(t(p + "norm1.weight"))
                layer.norm1.bias.copy_(t(p + "norm1.bias"))
                layer.norm2.weight.copy_(t(p + "norm2.weight"))
                layer.norm2.bias.copy_(t(p + "norm2.bias"))
            model.final_layer.weight.copy_(t("final_layer.weight"))
            model.final_layer.bias.copy_(t("final_layer.bias"))
        return model.eval()

    def forward(self, ids, trace=None):
        """ids [B, S] -> logits [B, S, V]; `trace` gets embed.out, each block's
        output (under layers.{i}.norm2, the name of the block's last step) and logits."""
        seq_len = ids.shape[1]
        x = self.embed(ids) + self.pos_encoding[:, :seq_len]
        mask = torch.triu(torch.ones(seq_len, seq_len, dtype=x.dtype), diagonal=1) * self.config.mask_value
        if trace is not None:
            trace["embed.out"] = x.detach()
        for i, layer in enumerate(self.layers):
            x = layer(x, src_mask=mask)
            if trace is not None:
                trace[block_prefix(i) + "norm2"] = x.detach()
        logits = self.final_layer(x)
        if trace is not None:
            trace["logits"] = logits.detach()
        return logits
