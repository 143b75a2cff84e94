"""Run the NumPy reference, the PyTorch model and the stock-layer oracle on the
same weights and inputs, and compare them with numpy_ref.parity."""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

import numpy_ref
import numpy_ref.forward
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


def drawn_case(config, batch: int, seq_len: int, seed: int = 0) -> Case:
    """One input of the given shape drawn from the vocabulary, holding the pad id somewhere."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, config.vocab_size, size=(batch, seq_len))
    ids.flat[rng.integers(0, ids.size)] = config.pad_id
    return Case(f"drawn (B = {batch}, S = {seq_len})", ids)


_DONE = object()
STALL_SECONDS = 600  # far above any one step's time; a stalled comparison fails instead of hanging


class _Stream:
    """A trace that hands each recorded (name, value) over to the comparing thread instead of
    keeping it. The queue holds one item, so a producer runs at most one intermediate ahead of
    the comparison, and nothing is held once it is compared: memory stays at about one
    forward's working set per implementation, whatever the number of layers."""

    def __init__(self, name: str, run):
        self.name = name
        self.queue = queue.Queue(maxsize=1)
        self.finished = False
        self.thread = threading.Thread(target=self._produce, args=(run,), daemon=True, name=f"parity-{name}")
        self.thread.start()

    def __setitem__(self, name, value):
        if isinstance(value, torch.Tensor):
            value = value.numpy()
        self.queue.put((name, value))

    def _produce(self, run):
        try:
            with torch.no_grad():
                run(self)
            self.queue.put((_DONE, None))
        except BaseException as error:  # handed to the comparing thread, which raises it
            self.queue.put((_DONE, error))

    def next(self):
        """The next (name, value), or (None, None) once the forward has finished."""
        if self.finished:
            return None, None
        try:
            name, value = self.queue.get(timeout=STALL_SECONDS)
        except queue.Empty:
            raise RuntimeError(f"the {self.name} forward handed over no intermediate for {STALL_SECONDS} s") from None
        if name is _DONE:
            self.finished = True
            if value is not None:
                raise value
            return None, None
        return name, value

    def rest(self) -> OrderedDict:
        """Everything still to come (only where the two sides' names no longer line up)."""
        remaining = OrderedDict()
        while True:
            name, value = self.next()
            if name is None:
                return remaining
            remaining[name] = value


def _compare_case(ids, dtype, reference, numpy_forward, hand_written, stock, exact, histogram) -> list:
    """Run every implementation on one input and compare as the intermediates arrive."""
    config = reference.config
    numpy_side = _Stream("numpy", lambda trace: numpy_forward(reference.params, config, ids, trace))
    tensor_ids = torch.from_numpy(ids)
    torch_side = _Stream("torch", lambda trace: hand_written(tensor_ids, trace))
    stock_side = _Stream("torch_stock", lambda trace: stock(tensor_ids, trace))
    exact_side = None if exact is None else _Stream("exact", lambda trace: exact(tensor_ids, trace))

    def compare(actual, expected, against, expected_exact):
        noise = None
        if expected_exact is not None:
            noise = {name: relative_error(value, expected_exact[name]) for name, value in expected.items()}
        return compare_traces(actual, expected, dtype, against=against, noise=noise, histogram=histogram)

    rows = []
    while True:
        name, expected = torch_side.next()
        actual_name, actual = numpy_side.next()
        exact_value = None if exact_side is None or name is None else {name: exact_side.next()[1]}
        if name is None and actual_name is None:
            break  # both finished, every name in line
        if name != actual_name:
            # The names no longer line up (a missing, extra or reordered intermediate): compare
            # what is left by name, which reports each such name as a failure.
            expected_rest = (OrderedDict() if name is None else OrderedDict([(name, expected)])) | torch_side.rest()
            actual_rest = (OrderedDict() if actual_name is None else OrderedDict([(actual_name, actual)])) | numpy_side.rest()
            exact_rest = None if exact_side is None else (exact_value or {}) | exact_side.rest()
            rest_rows = compare(actual_rest, expected_rest, "torch", exact_rest)
            if name in actual_rest and actual_name in expected_rest:  # both there, in another order
                row = next(row for row in rest_rows if row.name == name)
                row.ok, row.note = False, f"out of order: NumPy recorded {actual_name} here"
            rows += rest_rows
            stock_rest = stock_side.rest()
            rows += compare({n: actual_rest[n] for n in stock_rest if n in actual_rest}, stock_rest, "torch_stock", None)
            break
        rows += compare({name: actual}, {name: expected}, "torch", exact_value)
        if name in stock.recorded_names:
            stock_name, stock_value = stock_side.next()
            rows += compare({name: actual}, {stock_name: stock_value}, "torch_stock", exact_value)
    for side in (stock_side, exact_side):  # let every producer finish (and raise what it raised)
        if side is not None:
            side.rest()
    return rows


def run_parity(checkpoint: Checkpoint, dtype: str, cases: list[Case], measure_noise: bool = True,
               forward=None, histogram: bool = False) -> ParityReport:
    """Compare NumPy against the PyTorch model at every intermediate, and against the
    stock layers at the embedding, each block's output and the logits.

    The implementations run side by side, each in its own thread, and every intermediate is
    compared as soon as both sides have it and then dropped: no trace is ever held whole.
    With measure_noise=False, float32 uses the fixed 1e-5 bound alone (for studying the
    policy). `forward` replaces numpy_ref.forward.forward (same signature), e.g. by a mutant.
    histogram=True also counts each row's elements per decade of error (for verify --html)."""
    config, params = checkpoint.config, checkpoint.params
    reference = numpy_ref.Model.from_checkpoint(checkpoint, dtype)
    hand_written = Decoder.from_params(config, params, TORCH_DTYPES[dtype])
    stock = StockDecoder.from_params(config, params, TORCH_DTYPES[dtype])
    # In float32, the PyTorch model also runs in float64, to measure how far PyTorch's own
    # float32 result is from the exact one: the noise that widens an ill-conditioned
    # tensor's tolerance (see numpy_ref.parity).
    exact = Decoder.from_params(config, params, torch.float64) if dtype == "float32" and measure_noise else None
    numpy_forward = forward if forward is not None else numpy_ref.forward.forward
    order = {name: index for index, name in enumerate(trace_names(config.n_layers))}

    per_case = []
    for case in cases:
        ids = reference.check_ids(case.ids)
        rows = _compare_case(ids, dtype, reference, numpy_forward, hand_written, stock, exact, histogram)
        rows.sort(key=lambda row: order.get(row.name, len(order)))  # stable: torch before torch_stock
        per_case.append(rows)
    return ParityReport.combine(dtype, per_case, [case.describe() for case in cases])
