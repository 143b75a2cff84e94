"""The decoder of SPEC as a torch.nn.Module whose state_dict keys are the canonical names.

It is written the way PyTorch code is naturally written (nn.Linear, nn.LayerNorm,
torch.softmax), not as a translation of the NumPy reference, so that the two are
two implementations and not one. Given a dict as `trace`, forward() records every
intermediate under its SPEC name (detached copies of the graph's tensors; with
keep_graph=True the graph's own tensors, whose gradients `.grad` holds after backward).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from numpy_ref.config import ModelConfig
from numpy_ref.schema import parameter_shapes


class _GraphTrace:
    """forward(..., keep_graph=True) records through this: the tensors stay in the graph and
    keep their gradient (retain_grad), so that backward fills `.grad` at every trace name."""

    def __init__(self, target: dict):
        self.target = target

    def keep(self, name, tensor):
        if tensor.requires_grad:
            tensor.retain_grad()
        self.target[name] = tensor


def _record(trace, name, tensor):
    if isinstance(trace, _GraphTrace):
        trace.keep(name, tensor)
    elif trace is not None:
        trace[name] = tensor.detach()


class Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.head_dim
        self.mask_value = config.mask_value
        self.q = nn.Linear(config.d_model, config.d_model)
        self.k = nn.Linear(config.d_model, config.d_model)
        self.v = nn.Linear(config.d_model, config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)

    def heads(self, x):
        # [B, S, E] -> [B, S, H, D] -> [B, H, S, D]
        return x.view(x.shape[0], x.shape[1], self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x, trace=None, prefix=""):
        batch, seq_len, d_model = x.shape
        q, k, v = self.q(x), self.k(x), self.v(x)
        for name, t in (("q", q), ("k", k), ("v", v)):
            _record(trace, prefix + name, t)
        q_heads, k_heads, v_heads = self.heads(q), self.heads(k), self.heads(v)
        for name, t in (("q_heads", q_heads), ("k_heads", k_heads), ("v_heads", v_heads)):
            _record(trace, prefix + name, t)

        scores_raw = torch.matmul(q_heads, k_heads.transpose(-2, -1))
        scores_scaled = scores_raw / math.sqrt(self.head_dim)
        mask = torch.triu(torch.ones(seq_len, seq_len, dtype=x.dtype, device=x.device), diagonal=1) * self.mask_value
        if isinstance(trace, _GraphTrace):
            mask.requires_grad_()  # a constant, but its gradient is compared too
        scores_masked = scores_scaled + mask
        weights = torch.softmax(scores_masked, dim=-1)
        context = torch.matmul(weights, v_heads)
        context_merged = context.transpose(1, 2).reshape(batch, seq_len, d_model)
        out = self.out(context_merged)
        for name, t in (
            ("scores_raw", scores_raw), ("scores_scaled", scores_scaled), ("mask", mask),
            ("scores_masked", scores_masked), ("weights", weights), ("context", context),
            ("context_merged", context_merged), ("out", out),
        ):
            _record(trace, prefix + name, t)
        return out


class FeedForward(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.linear1 = nn.Linear(config.d_model, config.d_ff)
        self.linear2 = nn.Linear(config.d_ff, config.d_model)

    def forward(self, x, trace=None, prefix=""):
        hidden_pre = self.linear1(x)
        hidden = torch.relu(hidden_pre)
        out = self.linear2(hidden)
        _record(trace, prefix + "hidden_pre", hidden_pre)
        _record(trace, prefix + "hidden", hidden)
        _record(trace, prefix + "out", out)
        return out


class Block(nn.Module):
    """Post-norm: x = norm1(x + attention(x)); x = norm2(x + feed_forward(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention = Attention(config)
        self.norm1 = nn.LayerNorm(config.d_model, eps=config.ln_eps)
        self.feed_forward = FeedForward(config)
        self.norm2 = nn.LayerNorm(config.d_model, eps=config.ln_eps)

    def forward(self, x, trace=None, prefix=""):
        residual1 = x + self.attention(x, trace, prefix + "attention.")
        x = self.norm1(residual1)
        _record(trace, prefix + "residual1", residual1)
        _record(trace, prefix + "norm1", x)
        residual2 = x + self.feed_forward(x, trace, prefix + "feed_forward.")
        x = self.norm2(residual2)
        _record(trace, prefix + "residual2", residual2)
        _record(trace, prefix + "norm2", x)
        return x


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_id)
        self.pos_encoding = nn.Parameter(torch.empty(1, config.max_seq_len, config.d_model))
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.final_layer = nn.Linear(config.d_model, config.vocab_size)
        self.reset_parameters()

    def reset_parameters(self):
        """SPEC init: embed and pos ~ N(0, 1) * 0.005; Linear and LayerNorm the PyTorch defaults."""
        with torch.no_grad():
            self.embed.weight.normal_().mul_(0.005)
            self.pos_encoding.normal_().mul_(0.005)

    def forward(self, ids, trace=None, keep_graph=False):
        """ids [B, S] (S <= max_seq_len) -> logits [B, S, V]. keep_graph=True records the
        graph's own tensors (not detached copies) and retains their gradients."""
        if keep_graph and trace is not None:
            trace = _GraphTrace(trace)
        seq_len = ids.shape[1]
        if seq_len > self.config.max_seq_len:
            raise ValueError(f"sequence of {seq_len} tokens is longer than max_seq_len={self.config.max_seq_len}")
        tokens = self.embed(ids)
        pos = self.pos_encoding[:, :seq_len]
        x = tokens + pos
        _record(trace, "embed.tokens", tokens)
        _record(trace, "embed.pos", pos)
        _record(trace, "embed.out", x)
        for i, layer in enumerate(self.layers):
            x = layer(x, trace, f"layers.{i}.")
        logits = self.final_layer(x)
        _record(trace, "logits", logits)
        return logits

    @classmethod
    def from_params(cls, config: ModelConfig, params: dict, dtype=torch.float32) -> "Decoder":
        """A Decoder holding `params` (canonical name -> NumPy array), in `dtype`, in eval mode."""
        model = cls(config).to(dtype)
        state = {name: torch.from_numpy(np.ascontiguousarray(params[name])).to(dtype) for name in parameter_shapes(config)}
        model.load_state_dict(state, strict=True)
        return model.eval()

    def numpy_params(self) -> dict:
        """The weights as canonical name -> float32 NumPy array, in schema order."""
        state = self.state_dict()
        return {name: state[name].detach().cpu().to(torch.float32).numpy().copy() for name in parameter_shapes(self.config)}
