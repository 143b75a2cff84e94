"""compare_traces and the report: tolerance policy, missing and extra names, first mismatch."""

from collections import OrderedDict

import numpy as np
import pytest

from numpy_ref.parity import ParityReport, compare_arrays, compare_traces, format_report, tolerance_for


def trace(dtype=np.float64):
    rng = np.random.default_rng(0)
    return OrderedDict([
        ("embed.out", rng.standard_normal((2, 3, 4)).astype(dtype)),
        ("layers.0.attention.mask", np.triu(np.ones((3, 3), dtype), 1) * dtype(-1e9)),
        ("layers.0.norm2", rng.standard_normal((2, 3, 4)).astype(dtype)),
        ("logits", rng.standard_normal((2, 3, 5)).astype(dtype)),
    ])


def test_tolerance_policy():
    assert tolerance_for("logits", "float64") == 1e-12
    assert tolerance_for("layers.3.attention.weights", "float32") == 1e-5
    assert tolerance_for("layers.3.attention.mask", "float32") == 0.0
    with pytest.raises(ValueError):
        tolerance_for("logits", "float16")


def test_identical_traces_pass():
    rows = compare_traces(trace(), trace(), "float64")
    assert [r.name for r in rows] == list(trace())
    assert all(r.ok and r.max_abs == 0.0 for r in rows)


def test_relative_error_is_against_the_tensors_scale():
    expected = np.array([100.0, 0.001])
    row = compare_arrays("x", expected + np.array([0.0, 1e-9]), expected, tol=1e-12)
    assert row.max_abs == pytest.approx(1e-9)
    assert row.max_rel == pytest.approx(1e-11)  # 1e-9 / 100
    assert not row.ok
    assert compare_arrays("x", expected + np.array([0.0, 1e-11]), expected, tol=1e-12).ok


def test_the_mask_must_be_bit_exact():
    actual, expected = trace(), trace()
    actual["layers.0.attention.mask"] = actual["layers.0.attention.mask"] * (1 + 1e-15)
    rows = compare_traces(actual, expected, "float64")
    assert [r.name for r in rows if not r.ok] == ["layers.0.attention.mask"]


def test_first_mismatch_is_the_earliest_in_execution_order():
    actual = trace()
    actual["layers.0.norm2"] = actual["layers.0.norm2"] + 1e-3
    actual["logits"] = actual["logits"] + 1e-3
    report = ParityReport.combine("float64", [compare_traces(actual, trace(), "float64")], [{"name": "a", "shape": [2, 3]}])
    assert not report.ok
    assert report.first_mismatch.name == "layers.0.norm2"
    text = format_report(report)
    assert "first mismatch: layers.0.norm2" in text and "MISMATCH" in text


def test_missing_and_extra_names_fail_instead_of_being_skipped():
    actual = trace()
    del actual["layers.0.norm2"]
    actual["layers.0.bonus"] = np.zeros(3)
    rows = {r.name: r for r in compare_traces(actual, trace(), "float64")}
    assert not rows["layers.0.norm2"].ok and "missing" in rows["layers.0.norm2"].note
    assert not rows["layers.0.bonus"].ok and "extra" in rows["layers.0.bonus"].note


def test_shape_dtype_and_nan_mismatches_fail():
    expected = np.zeros((2, 3))
    assert "shape" in compare_arrays("x", np.zeros((3, 2)), expected, 1e-12).note
    assert "dtype" in compare_arrays("x", np.zeros((2, 3), np.float32), expected, 1e-12).note
    bad = expected.copy()
    bad[0, 0] = np.nan
    assert not compare_arrays("x", bad, expected, 1e-12).ok


def test_an_all_zero_tensor_passes_only_when_exactly_zero():
    zeros = np.zeros(4)
    assert compare_arrays("x", zeros, zeros, 1e-12).ok
    assert not compare_arrays("x", zeros + 1e-300, zeros, 1e-12).ok


def test_combine_takes_the_worst_input_and_fails_a_name_absent_from_one_input():
    a = compare_traces(trace(), trace(), "float64")
    shifted = trace()
    shifted["logits"] = shifted["logits"] + 1e-14
    b = compare_traces(shifted, trace(), "float64")
    report = ParityReport.combine("float64", [a, b], [{"name": "a", "shape": []}, {"name": "b", "shape": []}])
    assert report.ok
    assert dict((r.name, r.max_abs) for r in report.rows)["logits"] == pytest.approx(1e-14, rel=0.5)
    report = ParityReport.combine("float64", [a, b[:-1]], [{"name": "a", "shape": []}, {"name": "b", "shape": []}])
    assert not report.ok and report.first_mismatch.name == "logits"


def test_float32_tolerance_widens_only_to_the_expected_sides_own_rounding_error():
    assert tolerance_for("logits", "float32", noise=1e-7) == 1e-5
    assert tolerance_for("logits", "float32", noise=1e-5) == pytest.approx(8e-5)
    assert tolerance_for("logits", "float64", noise=1e-5) == 1e-12
    assert tolerance_for("layers.0.attention.mask", "float32", noise=1.0) == 0.0
    expected = trace(np.float32)
    actual = trace(np.float32)
    actual["logits"] = actual["logits"] * np.float32(1 + 3e-5)
    rows = {r.name: r for r in compare_traces(actual, expected, "float32")}
    assert not rows["logits"].ok
    rows = {r.name: r for r in compare_traces(actual, expected, "float32", noise={"logits": 1e-5})}
    assert rows["logits"].ok and rows["logits"].noise == 1e-5
    report = ParityReport.combine("float32", [list(rows.values())], [{"name": "a", "shape": []}])
    assert "8.00e-05*" in format_report(report) and "widened" in format_report(report)
