"""numpy-ref verify end to end: the table, the JSON document and the exit codes."""

import json

import pytest

import numpy_ref.forward
from numpy_ref.schema import trace_names
from numpy_ref_cli.main import main


@pytest.fixture(scope="module")
def random_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify") / "random.safetensors"
    assert main(["init-random", "-o", str(path), "--seed", "5", "--vocab-size", "40"]) == 0
    return path


def test_verify_passes_in_both_dtypes_with_every_name(random_path, capsys):
    assert main(["verify", str(random_path), "--dtype", "float32", "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    assert "verdict (float32): OK" in out and "verdict (float64): OK" in out
    for name in trace_names(2):
        assert f"\n{name} " in out


def test_verify_json_document(random_path, capsys):
    assert main(["verify", str(random_path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and document["dtype"] == "float32" and document["first_mismatch"] is None
    rows = document["intermediates"]
    assert {row["name"] for row in rows} == set(trace_names(2))
    assert set(rows[0]) >= {"name", "shape", "max_abs", "max_rel", "tol", "ok"}
    shapes = {case["shape"][1] for case in document["cases"]}
    assert 1 in shapes and 64 in shapes
    assert any(case["shape"][0] > 1 for case in document["cases"])


def test_verify_both_dtypes_as_json_runs(random_path, capsys):
    assert main(["verify", str(random_path), "--json", "--dtype", "float32", "--dtype", "float64"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and [run["dtype"] for run in document["runs"]] == ["float32", "float64"]


def test_verify_on_a_prompt_reports_unknown_words(random_path, capsys):
    assert main(["verify", str(random_path), "--prompt", "if else zzz endif"]) == 0
    captured = capsys.readouterr()
    assert "prompt (4 words): shape [1, 4]" in captured.out
    assert "zzz" in captured.err


def test_verify_exits_1_and_names_the_first_mismatch(random_path, capsys, monkeypatch):
    """A softmax over the wrong axis in NumPy only: exit 1, first mismatch at the weights."""
    def softmax_wrong_axis(scores):
        shifted = scores - scores.max(axis=-2, keepdims=True)
        return numpy_ref.forward.np.exp(shifted) / numpy_ref.forward.np.exp(shifted).sum(axis=-2, keepdims=True)

    monkeypatch.setattr(numpy_ref.forward, "softmax", softmax_wrong_axis)
    assert main(["verify", str(random_path), "--json", "--dtype", "float64"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    assert document["first_mismatch"] == {"name": "layers.0.attention.weights", "against": "torch"}


def test_verify_on_drawn_shapes(random_path, capsys):
    assert main(["verify", str(random_path), "--shape", "2x7", "--shape", "1X64", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [case["shape"] for case in document["cases"]] == [[2, 7], [1, 64]]
    assert main(["verify", str(random_path), "--shape", "1x65"]) == 2
    assert "max_seq_len 64" in capsys.readouterr().err


def test_verify_grads_adds_a_gradient_report_per_dtype(random_path, capsys):
    assert main(["verify", str(random_path), "--grads", "--dtype", "float64", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    forward_run, gradient_run = document["runs"]
    assert forward_run["tolerance"]["relative"] == 1e-12
    assert gradient_run["tolerance"]["policy"] == "gradient" and gradient_run["ok"] is True
    names = [row["name"] for row in gradient_run["intermediates"]]
    assert names[0] == "loss" and "grad:embed.weight" in names and "grad:layers.0.attention.q.weight" in names
