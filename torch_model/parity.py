"""Run the NumPy reference, the PyTorch model and the stock-layer oracle on the
same weights and inputs, and compare them with numpy_ref.parity."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

import numpy_ref
from numpy_ref.checkpoint import Checkpoint
from numpy_ref.parity import ParityReport, compare_traces, relative_error
from numpy_ref.schema import trace_names

from .model import Decoder
from .oracle import StockDecoder

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Case:
    """One input to compare on: a name that says what it tests, and ids [B, S]."""

    name: str
    ids: np.ndarray

    def describe(self) -> dict:
        return {"name": self.name, "shape": list(self.ids.shape)}


def default_cases(config, seed: int = 0) -> list[Case]:
    """Inputs drawn from the vocabulary: S = 1, S = max_seq_len with B > 1, and a short
    batch; every one holds the pad id somewhere (its embedding row is not zero)."""
    rng = np.random.default_rng(seed)
    T, V = config.max_seq_len, config.vocab_size

    def draw(batch, seq_len):
        ids = rng.integers(0, V, size=(batch, seq_len))
        ids.flat[rng.integers(0, ids.size)] = config.pad_id
        return ids

    cases = [Case("one token (S = 1)", draw(1, 1)),
             Case(f"full context (B = 3, S = max_seq_len = {T})", draw(3, T))]
    if T > 2:
        short = min(5, T - 1)
        cases.append(Case(f"short batch (B = 2, S = {short})", draw(2, short)))
    return cases


def _numpy_trace(trace: dict) -> dict:
    return {name: tensor.numpy() for name, tensor in trace.items()}


def run_parity(checkpoint: Checkpoint, dtype: str, cases: list[Case], measure_noise: bool = True,
               forward=None, histogram: bool = False) -> ParityReport:
    """Compare NumPy against the PyTorch model at every intermediate, and against the
    stock layers at the embedding, each block's output and the logits. With
    measure_noise=False, float32 uses the fixed 1e-5 bound alone (for studying the policy).
    `forward` replaces numpy_ref.forward.forward (same signature), e.g. by a mutant.
    histogram=True also counts each row's elements per decade of error (for verify --html)."""
    config, params = checkpoint.config, checkpoint.params
    reference = numpy_ref.Model.from_checkpoint(checkpoint, dtype)
    hand_written = Decoder.from_params(config, params, TORCH_DTYPES[dtype])
    stock = StockDecoder.from_params(config, params, TORCH_DTYPES[dtype])
    # In float32, the PyTorch model also runs in float64, to measure how far PyTorch's own
    # float32 result is from the exact one: the noise that widens an ill-conditioned
    # tensor's tolerance (see numpy_ref.parity).
    exact = Decoder.from_params(config, params, torch.float64) if dtype == "float32" and measure_noise else None
    order = {name: index for index, name in enumerate(trace_names(config.n_layers))}

    per_case = []
    for case in cases:
        ids = reference.check_ids(case.ids)
        if forward is None:
            _, numpy_trace = reference.run_with_trace(ids)
        else:
            numpy_trace = OrderedDict()
            forward(reference.params, config, ids, numpy_trace)
        ids = torch.from_numpy(ids)
        torch_trace, stock_trace, exact_trace = {}, {}, {}
        with torch.no_grad():
            hand_written(ids, torch_trace)
            stock(ids, stock_trace)
            if exact is not None:
                exact(ids, exact_trace)
        torch_trace, stock_trace = _numpy_trace(torch_trace), _numpy_trace(stock_trace)
        torch_noise = stock_noise = None
        if exact is not None:
            exact_trace = _numpy_trace(exact_trace)
            torch_noise = {name: relative_error(value, exact_trace[name]) for name, value in torch_trace.items()}
            stock_noise = {name: relative_error(value, exact_trace[name]) for name, value in stock_trace.items()}
        rows = compare_traces(numpy_trace, torch_trace, dtype, against="torch", noise=torch_noise, histogram=histogram)
        at_stock_names = {name: value for name, value in numpy_trace.items() if name in stock_trace}
        rows += compare_traces(at_stock_names, stock_trace, dtype, against="torch_stock", noise=stock_noise,
                               histogram=histogram)
        rows.sort(key=lambda row: order.get(row.name, len(order)))  # stable: torch before torch_stock
        per_case.append(rows)
    return ParityReport.combine(dtype, per_case, [case.describe() for case in cases])
