"""Comparing two traces, intermediate by intermediate, in execution order.

Tolerance policy:

    relative error = max |actual - expected| / max |expected|     (the tensor's scale)

    float64   relative error <= 1e-12
    float32   relative error <= max(1e-5, 8 * noise), where noise is the expected side's
              own float32 rounding error: max |expected_float32 - expected_float64| / scale
    mask      (layers.{i}.attention.mask) bit for bit equal, in both dtypes

The error is measured against the scale of the whole tensor, not element by
element: elements near zero (a ReLU's edge, a masked weight) would otherwise turn
harmless rounding into huge relative errors. Two correct implementations differ
only in the order of their floating-point sums. In float64 that leaves errors
near 1e-15, far inside 1e-12. In float32 it usually leaves about 1e-6, but an
ill-conditioned tensor amplifies rounding: a LayerNorm whose input row has a
variance near eps, a ReLU output whose largest values were cut off. There the
expected side is itself off from the exact answer by more than 1e-5, and the
bound widens to 8 times that measured error, so a correct reference is never
called wrong, while a real bug (an error far above rounding) is still caught.
A tensor whose expected values are all 0 passes only if the actual ones are
exactly 0 too.

Gradients (torch_model/grad_parity.py, the NumPy backward against autograd) have a
policy of their own, the same rule with wider bounds and no exact rows:

    float64   relative error <= 1e-10
    float32   relative error <= max(1e-4, 8 * noise)

A gradient passes through every step of the forward and back again, so it
accumulates about twice the forward's rounding, and some of it is large but
cancels (the softmax Jacobian, LayerNorm's mean and variance terms). The mask's
gradient is a sum over the batch and the heads, not an exact value.

Beyond the values, the shape and the dtype must match, and the two traces must
hold exactly the same names: a missing or an extra intermediate is a failure,
never a skip. The first failing intermediate in execution order is named, since
every later one inherits its error.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

RELATIVE_TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
GRADIENT_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}  # the gradient policy (see above)
POLICIES = {"forward": RELATIVE_TOLERANCE, "gradient": GRADIENT_TOLERANCE}
NOISE_FACTOR = 8.0  # float32: how many times the expected side's own rounding error is tolerated
# The error histogram's decade edges, 1e-16 ... 1e-3 (see error_histogram).
HISTOGRAM_EDGES = tuple(10.0 ** exponent for exponent in range(-16, -2))


def is_exact(name: str) -> bool:
    """Intermediates that two correct implementations produce bit for bit."""
    return name.endswith("attention.mask")


def tolerance_for(name: str, dtype: str, noise: float | None = None, policy: str = "forward") -> float:
    """The relative tolerance of one intermediate; `noise` is the expected side's own
    float32 rounding error (relative to its scale), where it was measured. `policy` is
    "forward" (values) or "gradient" (gradients: wider bounds, no exact rows)."""
    bounds = POLICIES[policy]
    if dtype not in bounds:
        raise ValueError(f"no tolerance for dtype {dtype!r}; use one of {sorted(bounds)}")
    if policy == "forward" and is_exact(name):
        return 0.0
    if dtype == "float32" and noise is not None:
        return max(bounds[dtype], NOISE_FACTOR * noise)
    return bounds[dtype]


def relative_error(actual, expected, scale: float | None = None) -> float:
    """max |actual - expected| / max |expected|, computed in float64. `scale` replaces
    max |expected| where the tensor's own scale means nothing (see compare_traces)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if scale is None:
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    max_abs = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    if scale == 0.0:
        return 0.0 if max_abs == 0.0 else float("inf")
    return max_abs / scale


def histogram_labels() -> list[str]:
    """The bins of error_histogram, in order: 0, below 1e-16, one per decade, 1e-3 and above."""
    edges = [f"{edge:.0e}".replace("e-0", "e-") for edge in HISTOGRAM_EDGES]
    return ["0", f"<{edges[0]}"] + [f"{low}..{high}" for low, high in zip(edges, edges[1:])] + [f">={edges[-1]}"]


def error_histogram(actual, expected) -> dict:
    """How many elements fall in each decade of error relative to the tensor's scale,
    |actual - expected| / max |expected| element by element (the quantity the tolerance bounds):
    exactly 0, below 1e-16, [1e-16, 1e-15), ..., [1e-4, 1e-3), 1e-3 and above. An all-zero
    expected tensor has no scale: an element counts as 0 if equal, else as >=1e-3.
    The counts add up to the number of elements."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    difference = np.abs(actual - expected).ravel()
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    errors = difference / scale if scale > 0 else np.where(difference == 0, 0.0, np.inf)
    nonzero = errors[errors != 0]  # NaN (a non-finite element) lands in the last bin
    bins = np.searchsorted(np.asarray(HISTOGRAM_EDGES), nonzero, side="right")  # 0 .. len(edges)
    bins[np.isnan(nonzero)] = len(HISTOGRAM_EDGES)
    counts = [int(errors.size - nonzero.size)] + np.bincount(bins, minlength=len(HISTOGRAM_EDGES) + 1).tolist()
    return dict(zip(histogram_labels(), counts))


@dataclass
class Comparison:
    """One intermediate compared. max_abs and max_rel are None where no values could be compared."""

    name: str
    shape: list | None           # the expected shape
    max_abs: float | None
    max_rel: float | None
    tol: float
    ok: bool
    against: str = "torch"       # which implementation gave the expected values
    note: str = ""               # why it failed, when not because of the values
    noise: float | None = None   # float32: the expected side's own rounding error, relative
    histogram: dict | None = None  # when asked: element counts per decade of error (error_histogram)

    def to_dict(self) -> dict:
        return asdict(self)


def compare_arrays(name: str, actual, expected, tol: float, against: str = "torch", histogram: bool = False,
                   scale: float | None = None) -> Comparison:
    actual, expected = np.asarray(actual), np.asarray(expected)
    shape = list(expected.shape)
    if actual.shape != expected.shape:
        return Comparison(name, shape, None, None, tol, False, against, f"shape {list(actual.shape)}, expected {shape}")
    if actual.dtype != expected.dtype:
        return Comparison(name, shape, None, None, tol, False, against, f"dtype {actual.dtype}, expected {expected.dtype}")
    if actual.size == 0:
        return Comparison(name, shape, 0.0, 0.0, tol, True, against)
    wide_actual, wide_expected = actual.astype(np.float64), expected.astype(np.float64)
    if not (np.all(np.isfinite(wide_actual)) and np.all(np.isfinite(wide_expected))):
        return Comparison(name, shape, None, None, tol, False, against, "NaN or infinite values")
    max_abs = float(np.max(np.abs(wide_actual - wide_expected)))
    max_rel = relative_error(wide_actual, wide_expected, scale)
    counts = error_histogram(wide_actual, wide_expected) if histogram else None
    return Comparison(name, shape, max_abs, max_rel, tol, max_rel <= tol, against, histogram=counts)


def compare_traces(actual, expected, dtype: str, against: str = "torch", noise: dict | None = None,
                   histogram: bool = False, policy: str = "forward", scales: dict | None = None) -> list[Comparison]:
    """Compare every name of `expected` (in its order), then flag names only `actual` has.
    `noise` maps names to the expected side's float32 rounding error (see the policy);
    histogram=True also counts each row's elements per decade of error (error_histogram);
    policy="gradient" applies the gradient policy; `scales` maps names to the scale their
    error is measured against instead of their own max |expected| (for a tensor that is 0
    in exact arithmetic, so that both sides hold only rounding: the gradient of k's bias)."""
    rows = []
    for name, expected_value in expected.items():
        name_noise = None if noise is None else noise.get(name)
        tol = tolerance_for(name, dtype, name_noise, policy)
        if name not in actual:
            row = Comparison(name, list(np.shape(expected_value)), None, None, tol, False, against, "missing from the NumPy trace")
        else:
            scale = None if scales is None else scales.get(name)
            row = compare_arrays(name, actual[name], expected_value, tol, against, histogram, scale)
        row.noise = name_noise
        rows.append(row)
    for name in actual:
        if name not in expected:
            rows.append(Comparison(name, list(np.shape(actual[name])), None, None, tolerance_for(name, dtype, policy=policy),
                                   False, against, f"extra: {against} has no such intermediate"))
    return rows


def _closeness_to_failing(row: Comparison) -> float:
    """max_rel / tol: above 1 fails. A row that could not be compared counts as infinitely far."""
    if row.max_rel is None:
        return float("inf")
    if row.tol == 0.0:
        return float("inf") if row.max_rel > 0 else 0.0
    return row.max_rel / row.tol


@dataclass
class ParityReport:
    """All comparisons of one dtype, over one or more inputs, in execution order."""

    dtype: str
    rows: list[Comparison]
    cases: list[dict] = field(default_factory=list)  # a description of each input
    policy: str = "forward"  # or "gradient": which tolerance policy the rows used

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def first_mismatch(self) -> Comparison | None:
        return next((row for row in self.rows if not row.ok), None)

    @classmethod
    def combine(cls, dtype: str, per_case: list[list[Comparison]], cases: list[dict],
                policy: str = "forward") -> "ParityReport":
        """One row per (intermediate, against) over several inputs. It shows the input
        closest to failing (the largest error relative to its own tolerance) and the shape
        of the largest input; it fails if it fails, or is absent, for any input."""
        groups: dict[tuple, list[Comparison]] = {}
        for rows in per_case:
            for row in rows:
                groups.setdefault((row.name, row.against), []).append(row)
        combined = []
        for (name, against), rows in groups.items():
            closest = max(rows, key=_closeness_to_failing)
            largest = max(rows, key=lambda row: int(np.prod(row.shape or [0])))
            row = Comparison(**{**closest.to_dict(), "shape": largest.shape})
            histograms = [r.histogram for r in rows if r.histogram is not None]
            if histograms:  # the counts of every input's elements
                row.histogram = {label: sum(h[label] for h in histograms) for label in histograms[0]}
            if len(rows) != len(per_case):
                row.ok, row.note = False, f"present for only {len(rows)} of {len(per_case)} inputs"
            combined.append(row)
        return cls(dtype, combined, cases, policy)

    def to_dict(self) -> dict:
        first = self.first_mismatch
        tolerance = {"relative": POLICIES[self.policy][self.dtype], "mask": 0.0,
                     "noise_factor": NOISE_FACTOR if self.dtype == "float32" else None}
        if self.policy != "forward":
            del tolerance["mask"]
            tolerance["policy"] = self.policy
        return {
            "ok": self.ok,
            "dtype": self.dtype,
            "first_mismatch": None if first is None else {"name": first.name, "against": first.against},
            "tolerance": tolerance,
            "cases": self.cases,
            "intermediates": [row.to_dict() for row in self.rows],
        }


def _number(value) -> str:
    return "-" if value is None else f"{value:.2e}"


def format_report(report: ParityReport) -> str:
    """The report as a plain-text table, then the first mismatch and the verdict."""
    what = report.dtype if report.policy == "forward" else f"{report.dtype}, {report.policy}s"  # "float32, gradients"
    lines = [f"dtype {what}: {len(report.cases)} input(s)"]
    for case in report.cases:
        lines.append(f"  - {case['name']}: shape {case['shape']}")
    header = ("intermediate", "vs", "shape", "max abs err", "rel err", "tolerance", "result")
    widened = [row for row in report.rows if row.tol > POLICIES[report.policy][report.dtype]]
    table = [header] + [
        (row.name, row.against, "[" + ", ".join(map(str, row.shape or [])) + "]", _number(row.max_abs),
         _number(row.max_rel), _number(row.tol) + ("*" if row in widened else ""),
         ("OK" if row.ok else "MISMATCH") + (f"  ({row.note})" if row.note else ""))
        for row in report.rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    for line in table:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1])
    if widened:
        lines.append(f"* widened to {NOISE_FACTOR:g} x the expected side's own float32 rounding error "
                     f"(measured against float64): an ill-conditioned tensor")
    first = report.first_mismatch
    if first is None:
        worst = max((row for row in report.rows if row.max_rel is not None and row.tol > 0), key=lambda row: row.max_rel, default=None)
        if worst is not None:
            lines.append(f"largest relative error: {worst.max_rel:.2e} at {worst.name} (vs {worst.against}; tolerance {worst.tol:.2e})")
        lines.append(f"verdict ({what}): OK, all {len(report.rows)} comparisons within tolerance")
    else:
        reason = first.note or f"relative error {_number(first.max_rel)} > tolerance {_number(first.tol)}"
        lines.append(f"first mismatch: {first.name} (vs {first.against}): {reason}")
        failed = sum(1 for row in report.rows if not row.ok)
        lines.append(f"verdict ({what}): MISMATCH, {failed} of {len(report.rows)} comparisons failed")
    return "\n".join(lines)


def reports_to_json(reports: list[ParityReport], checkpoint: str) -> str:
    """One JSON document: a single dtype's report at the top level; several under "runs"."""
    if len(reports) == 1:
        document = {"checkpoint": checkpoint, **reports[0].to_dict()}
    else:
        document = {"checkpoint": checkpoint, "ok": all(r.ok for r in reports), "runs": [r.to_dict() for r in reports]}
    return json.dumps(document, indent=2)
