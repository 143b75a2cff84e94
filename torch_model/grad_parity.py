"""The NumPy backward pass (numpy_ref.backward) against PyTorch's autograd, on the same
weights and batches, compared with numpy_ref.parity's gradient policy.

Rows, in the order they are read (numpy_ref.backward.gradient_order):

    loss                        the loss itself (SPEC's cross-entropy, ignore index = pad id)
    grad:logits                 d loss / d logits
    grad:final_layer.weight     ... then every trace name in REVERSE execution order,
    grad:final_layer.bias           each followed by the parameters of the step that made it
    grad:layers.1.norm2
    ...
    grad:embed.tokens
    grad:embed.weight

`grad:<trace name>` is the gradient of the loss with respect to that intermediate (in
torch: `.grad` of the recorded tensor, kept in the graph with retain_grad);
`grad:<parameter>` the gradient of a canonical parameter. Reverse order puts the step
nearest the loss first, so the first mismatch is the earliest backward step that fails.
The gradient at `layers.{i}.attention.mask` is compared too: the mask is a constant
added to the scores, its gradient is the scores' gradient summed over batch and heads.

One gradient is 0 in exact arithmetic: that of k's bias. Adding one vector to every
key adds the same number to every score of a query's row, which the softmax ignores,
so the loss does not depend on k's bias; both sides hold only rounding (about 1e-17 in
float64), and relative to its own scale that rounding is 100%. Its error is measured
against the scale of what it sums instead, the gradient at `attention.k` (the row says so).

The ReLU has a kink at 0. Where NumPy's forward and torch's put an input of the ReLU on
different sides of 0, both values within the forward's tolerance of each other (about 3% of
float32 batches of SPEC's size have one such element), the two backward passes
differentiate different pieces of the ReLU, and every gradient from `hidden_pre` down
differs by far more than rounding although both are right. There the NumPy trace takes
torch's value of those elements before its backward runs (`align_relu_kinks`; the row of
`grad:...feed_forward.hidden_pre` says how many). A forward bug is never hidden this way:
values that differ by more than the forward's tolerance are left alone, and the forward
itself is checked by verify.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

import numpy_ref
from numpy_ref.backward import backward as numpy_backward
from numpy_ref.backward import check_targets, cross_entropy, gradient_order
from numpy_ref.checkpoint import Checkpoint
from numpy_ref.forward import forward
from numpy_ref.parity import ParityReport, compare_traces, relative_error, tolerance_for

from .model import Decoder
from .parity import TORCH_DTYPES
from .train import loss_fn

GRAD_PREFIX = "grad:"
LOSS_ROW = "loss"
# Gradients that are 0 in exact arithmetic (inside a block), and the gradient whose scale
# their error is measured against: the one they are the sum of (see the module docstring).
STRUCTURAL_ZEROS = {"attention.k.bias": "attention.k"}


@dataclass
class GradCase:
    """One batch to compare gradients on: a name that says what it tests, inputs ids [B, S]
    and the next tokens targets [B, S]."""

    name: str
    ids: np.ndarray
    targets: np.ndarray

    def describe(self) -> dict:
        return {"name": self.name, "shape": list(self.ids.shape),
                "pad_targets": int(np.sum(self.targets == 0))}


def default_grad_cases(config, seed: int = 0) -> list[GradCase]:
    """Batches cut from a random id stream, as training cuts them (inputs [:, :S], targets
    [:, 1:] of [B, S + 1] rows): S = 1, a training-sized batch (B = 4, S = max_seq_len) and a
    short batch. Each has the pad id among its inputs (the pad row's gradient must stay 0)
    and among its targets (ignored by the loss), and at least one target that counts."""
    rng = np.random.default_rng(seed)
    V, T, pad = config.vocab_size, config.max_seq_len, config.pad_id

    def draw(batch, seq_len, n_pads):
        rows = rng.integers(0, V, size=(batch, seq_len + 1))
        rows[rows == pad] = (pad + 1) % V  # pads only where placed below
        rows.flat[rng.choice(rows.size, size=min(n_pads, rows.size), replace=False)] = pad
        rows[0, 0], rows[0, 1] = pad, (pad + 1) % V  # a pad input whose target counts
        if seq_len > 1:
            rows[-1, -1] = pad  # a pad target
        return rows[:, :seq_len], rows[:, 1:]

    cases = [GradCase("one token (S = 1)", *draw(1, 1, 0)),
             GradCase(f"training batch (B = 4, S = max_seq_len = {T})", *draw(4, T, max(2, 4 * T // 16)))]
    if T > 2:
        short = min(5, T - 1)
        cases.append(GradCase(f"short batch (B = 2, S = {short})", *draw(2, short, 2)))
    return cases


def torch_gradients(model: Decoder, ids: np.ndarray, targets: np.ndarray, values: dict | None = None):
    """(loss, param_grads, trace_grads) from autograd, as NumPy arrays keyed like
    numpy_ref.backward.loss_and_gradients. A tensor autograd gave no gradient gets zeros.
    Pass a dict as `values` to receive the forward's values too (trace name -> array)."""
    model.zero_grad(set_to_none=True)
    trace = {}
    logits = model(torch.from_numpy(np.asarray(ids, np.int64)), trace, keep_graph=True)
    loss = loss_fn(logits, torch.from_numpy(np.asarray(targets, np.int64)), model.config.pad_id)
    loss.backward()

    def as_numpy(tensor, grad):
        return (torch.zeros_like(tensor) if grad is None else grad).detach().numpy().copy()

    param_grads = {name: as_numpy(p, p.grad) for name, p in model.named_parameters()}
    trace_grads = {name: as_numpy(t, t.grad) for name, t in trace.items()}
    if values is not None:
        values.update({name: t.detach().numpy().copy() for name, t in trace.items()})
    return loss.item(), param_grads, trace_grads


def align_relu_kinks(trace: OrderedDict, torch_values: dict, n_layers: int, tol: float) -> dict:
    """Where NumPy's trace and torch's forward put an input of a ReLU on different sides of 0,
    and the two values are within `tol` (relative to the tensor's scale) of each other, give
    the NumPy trace torch's value there (and the ReLU's output to match), so that both backward
    passes differentiate the same piece of the ReLU. Changes `trace` in place; returns
    {hidden_pre trace name: number of elements aligned}."""
    aligned = {}
    for layer in range(n_layers):
        name, output = f"layers.{layer}.feed_forward.hidden_pre", f"layers.{layer}.feed_forward.hidden"
        ours, theirs = trace[name], torch_values[name]
        flipped = (ours > 0) != (theirs > 0)
        if not flipped.any():
            continue
        if np.max(np.abs(ours[flipped] - theirs[flipped])) > tol * np.max(np.abs(theirs)):
            continue  # more than rounding apart: not a kink but a difference, left to fail
        hidden_pre, hidden = ours.copy(), trace[output].copy()
        hidden_pre[flipped] = theirs[flipped]
        hidden[flipped] = np.maximum(theirs[flipped], 0)
        trace[name], trace[output] = hidden_pre, hidden
        aligned[name] = int(flipped.sum())
    return aligned


def numpy_gradients(params: dict, config, ids: np.ndarray, targets: np.ndarray, backward=numpy_backward,
                    torch_values: dict | None = None):
    """(loss, param_grads, trace_grads, aligned) from the NumPy forward and `backward` (the
    signature of numpy_ref.backward.backward); with torch's forward values, ReLU kinks are
    aligned first (align_relu_kinks, with the forward's tolerance)."""
    targets = check_targets(config, ids, targets)
    trace = OrderedDict()
    forward(params, config, ids, trace)
    aligned = {}
    if torch_values is not None:
        dtype = np.dtype(trace["logits"].dtype).name
        aligned = align_relu_kinks(trace, torch_values, config.n_layers, tolerance_for("feed_forward.hidden_pre", dtype))
    loss = cross_entropy(trace["logits"], targets, config.pad_id)
    param_grads, trace_grads = backward(params, config, ids, targets, trace)
    return loss, param_grads, trace_grads, aligned


def report_rows(loss, param_grads, trace_grads, n_layers: int) -> dict:
    """One dict in the comparison's order: "loss", then "grad:<name>" by gradient_order."""
    found = {**trace_grads, **param_grads}
    rows = {LOSS_ROW: np.asarray(loss, dtype=next(iter(param_grads.values())).dtype)}
    for name in gradient_order(n_layers):
        if name in found:
            rows[GRAD_PREFIX + name] = found[name]
    for name in found:  # names outside the schema's order (a bug): listed, so that they fail as extra
        if GRAD_PREFIX + name not in rows:
            rows[GRAD_PREFIX + name] = found[name]
    return rows


def _structural_zeros(n_layers: int) -> dict:
    """Row name of each structural zero -> the row whose scale its error is measured against."""
    return {f"{GRAD_PREFIX}layers.{layer}.{zero}": f"{GRAD_PREFIX}layers.{layer}.{summed}"
            for layer in range(n_layers) for zero, summed in STRUCTURAL_ZEROS.items()}


def run_grad_parity(checkpoint: Checkpoint, dtype: str, cases: list[GradCase] | None = None,
                    measure_noise: bool = True, backward=None) -> ParityReport:
    """Compare the NumPy loss and gradients against autograd's on every case, with the
    gradient policy (numpy_ref.parity.GRADIENT_TOLERANCE). In float32 the PyTorch side also
    runs in float64 to measure its own rounding (the noise term, as for the forward).
    `backward` replaces numpy_ref.backward.backward (same signature), e.g. by a mutant."""
    config, params = checkpoint.config, checkpoint.params
    cases = default_grad_cases(config) if cases is None else cases
    reference = numpy_ref.Model.from_checkpoint(checkpoint, dtype)
    autograd = Decoder.from_params(config, params, TORCH_DTYPES[dtype])
    exact = Decoder.from_params(config, params, torch.float64) if dtype == "float32" and measure_noise else None
    backward = numpy_backward if backward is None else backward
    zeros = _structural_zeros(config.n_layers)

    per_case = []
    for case in cases:
        ids = reference.check_ids(case.ids)
        torch_values = {}
        torch_rows = report_rows(*torch_gradients(autograd, ids, case.targets, torch_values), config.n_layers)
        *numpy_result, aligned = numpy_gradients(reference.params, config, ids, case.targets, backward, torch_values)
        numpy_rows = report_rows(*numpy_result, config.n_layers)
        scales = {zero: float(np.max(np.abs(torch_rows[summed]))) for zero, summed in zeros.items()}
        noise = None
        if exact is not None:
            exact_rows = report_rows(*torch_gradients(exact, ids, case.targets), config.n_layers)
            noise = {name: relative_error(value, exact_rows[name], scales.get(name)) for name, value in torch_rows.items()}
        rows = compare_traces(numpy_rows, torch_rows, dtype, against="torch", noise=noise, policy="gradient", scales=scales)
        for row in rows:
            if row.name in zeros and row.ok:
                row.note = f"0 in exact arithmetic; error vs the scale of {zeros[row.name]}"
            kinks = aligned.get(row.name[len(GRAD_PREFIX):], 0)
            if kinks and row.ok:
                row.note = f"ReLU kink: {kinks} element(s) within rounding of 0 took torch's side"
        per_case.append(rows)
    return ParityReport.combine(dtype, per_case, [case.describe() for case in cases], policy="gradient")


def verify_grads(checkpoint: Checkpoint, dtypes=("float32", "float64"), seed: int = 0) -> list[ParityReport]:
    """What `numpy-ref verify --grads` runs: one gradient report per dtype on
    default_grad_cases(config, seed). Print each with numpy_ref.parity.format_report."""
    cases = default_grad_cases(checkpoint.config, seed)
    return [run_grad_parity(checkpoint, dtype, cases) for dtype in dtypes]
