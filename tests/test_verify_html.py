"""numpy-ref verify --html: the page, the first mismatch, the error histograms."""

from __future__ import annotations

import re

import numpy as np
import pytest

import numpy_ref.forward
from numpy_ref.html import parity_report_page
from numpy_ref.parity import compare_arrays, error_histogram, histogram_labels
from numpy_ref.schema import trace_names
from numpy_ref_cli.main import main


@pytest.fixture(scope="module")
def random_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify_html") / "random.safetensors"
    assert main(["init-random", "-o", str(path), "--seed", "2", "--vocab-size", "30", "--max-seq-len", "16"]) == 0
    return path


def histogram_rows(page: str) -> dict:
    """(name, against) -> (elements, [counts per bin]) from the page's histogram tables."""
    rows = {}
    for match in re.finditer(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>(\d+)</td>(.*?)</tr>", page):
        counts = [int(c) for c in re.findall(r"<td[^>]*>(\d+)</td>", match.group(4))]
        rows.setdefault((match.group(1), match.group(2)), []).append((int(match.group(3)), counts))
    return rows


def test_the_page_has_the_table_and_histograms_that_add_up(random_path, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["verify", str(random_path), "--dtype", "float32", "--dtype", "float64", "--html", str(out)]) == 0
    assert "verdict (float32): OK" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert "http" not in page.lower() and "<script" not in page and "src=" not in page
    assert "float32:" in page and "float64:" in page and "first mismatch" not in page
    for name in trace_names(2):
        assert f"<td>{name}</td>" in page
    rows = histogram_rows(page)
    # Verify's three inputs: [1, 1], [3, 16], [2, 5]: 1 + 48 + 10 = 59 positions.
    sizes = {"embed.tokens": 59 * 64, "layers.0.attention.weights": 4 * (1 + 3 * 256 + 2 * 25),
             "layers.1.attention.mask": 1 + 256 + 25, "logits": 59 * 30}
    for name, size in sizes.items():
        for elements, counts in rows[(name, "torch")]:  # one table per dtype
            assert len(counts) == len(histogram_labels())
            assert elements == size and sum(counts) == size
    assert len(rows[("layers.1.norm2", "torch_stock")]) == 2
    assert all(sum(counts) == elements for entries in rows.values() for elements, counts in entries)


def test_the_page_names_the_first_mismatch(random_path, tmp_path, monkeypatch, capsys):
    """A softmax over the wrong axis in NumPy only: the page's first mismatch is the weights."""
    def softmax_wrong_axis(scores):
        shifted = scores - scores.max(axis=-2, keepdims=True)
        return np.exp(shifted) / np.exp(shifted).sum(axis=-2, keepdims=True)

    monkeypatch.setattr(numpy_ref.forward, "softmax", softmax_wrong_axis)
    out = tmp_path / "report.html"
    assert main(["verify", str(random_path), "--dtype", "float64", "--html", str(out)]) == 1
    capsys.readouterr()
    page = out.read_text(encoding="utf-8")
    assert "first mismatch: layers.0.attention.weights</b> (vs torch)" in page
    assert re.search(r'<tr class="first"><td[^>]*>layers\.0\.attention\.weights</td>', page)
    elements, counts = histogram_rows(page)[("layers.0.attention.weights", "torch")][0]
    assert sum(counts) == elements and counts[-1] > 0  # errors of 1e-3 and more


def test_histograms_are_computed_only_when_asked():
    actual, expected = np.array([1.0, 2.0, 3.0 + 3e-9]), np.array([1.0, 2.0 + 4e-15, 3.0])
    assert compare_arrays("x", actual, expected, 1e-12).histogram is None
    row = compare_arrays("x", actual, expected, 1e-12, histogram=True)
    assert list(row.histogram) == histogram_labels()
    assert row.histogram["0"] == 1 and row.histogram["1e-15..1e-14"] == 1 and row.histogram["1e-10..1e-9"] == 1
    assert sum(error_histogram(np.zeros((3, 4)), np.ones((3, 4))).values()) == 12


def test_parity_report_page_without_histograms():
    from numpy_ref.parity import ParityReport, compare_traces

    trace = {"embed.out": np.ones((1, 2, 4))}
    report = ParityReport("float64", compare_traces(trace, trace, "float64"), [{"name": "case", "shape": [1, 2]}])
    page = parity_report_page([report], "model.safetensors")
    assert "embed.out" in page and "Error histograms" not in page and "first mismatch" not in page
