"""numpy-ref inspect: the phases' numbers against the trace, the terminal text, the page."""

from __future__ import annotations

import re
import textwrap
from html.parser import HTMLParser

import numpy as np
import pytest

import numpy_ref
from numpy_ref.checkpoint import save_checkpoint
from numpy_ref.config import ModelConfig
from numpy_ref.generate import generate, softmax64
from numpy_ref.html import heatmap, inspection_page
from numpy_ref.phases import DEFAULT_PROMPT, inspect, standardize
from numpy_ref.random_init import random_params, random_vocab
from numpy_ref_cli.main import main
from numpy_ref_cli.render_terminal import render, use_color

from conftest import run_without_torch

ANSI = re.compile(r"\x1b\[")


@pytest.fixture(scope="module")
def random_path(tmp_path_factory):
    config = ModelConfig(vocab_size=40)
    path = tmp_path_factory.mktemp("inspect") / "random.safetensors"
    save_checkpoint(path, random_params(config, seed=3), config, random_vocab(config.vocab_size))
    return path


@pytest.fixture(scope="module")
def model(random_path):
    return numpy_ref.load(random_path)


@pytest.fixture(scope="module")
def report(model):
    return inspect(model, DEFAULT_PROMPT, steps=6, top_k=5)


@pytest.fixture(scope="module")
def trace(model):
    ids = np.array([[model.vocab.index(w) for w in DEFAULT_PROMPT.split()]])
    return model.run_with_trace(ids)


# ---------------------------------------------------------------------------
# The phases' numbers


def test_input_phase(report, model, trace):
    phase = report.input
    assert [t.word for t in phase.tokens] == DEFAULT_PROMPT.split()
    assert [t.id for t in phase.tokens] == [model.vocab.index(w) for w in DEFAULT_PROMPT.split()]
    assert all(t.known for t in phase.tokens) and phase.unknown == []
    assert phase.shapes["embed.tokens"] == [1, 5, 64] and phase.shapes["embed.out"] == [1, 5, 64]
    rows = trace[1]["embed.tokens"][0]
    assert phase.token_rows[0].values == pytest.approx(rows[0, :6].tolist())
    assert phase.rows_distinct and len(phase.pairs) == 10
    expected = min(np.max(np.abs(rows[a].astype(np.float64) - rows[b])) for a in range(5) for b in range(a + 1, 5))
    assert phase.closest_pair.max_abs == pytest.approx(expected)
    pos = model.params["pos_encoding"][0]
    assert phase.pos_difference == pytest.approx(np.max(np.abs(pos[0].astype(np.float64) - pos[1])))
    assert phase.positions_differ and phase.sum_error == 0.0


def test_unknown_words_are_flagged_and_become_the_pad_id(model):
    result = inspect(model, "if zzz else if", steps=1)
    zzz = result.input.tokens[1]
    assert (zzz.word, zzz.id, zzz.known) == ("zzz", 0, False)
    assert result.input.unknown == ["zzz"]
    assert any("zzz" in note for note in result.notes)
    assert [t.label for t in result.input.tokens] == ["if#0", "zzz", "else", "if#3"]
    assert any(pair.same_id for pair in result.input.pairs)  # if#0 and if#3: the same row
    text = render(result, color=False)
    assert "NO → unknown, read as id 0" in text and "unknown word(s) flagged: zzz" in text
    assert 'class="unknown"' in inspection_page(result)


def test_attention_rows_sum_to_one_and_the_mask_hides_the_future(report, trace):
    weights = trace[1]["layers.0.attention.weights"]
    for layer in report.attention:
        assert layer.mask_ok
        assert layer.shapes["q_heads"] == [1, 4, 5, 16] and layer.shapes["scores_raw"] == [1, 4, 5, 5]
        for head in layer.heads:
            assert head.row_sums == pytest.approx([1.0] * 5, abs=1e-6)
            assert head.row_sum_error < 1e-6
            assert head.hidden_max == 0.0
            assert 0.0 <= head.weights_range[0] <= head.weights_range[1] <= 1.0
    head = report.attention[0].heads[2]
    assert np.array_equal(np.array(head.weights), weights[0, 2].astype(np.float64))
    raw = trace[1]["layers.0.attention.scores_raw"][0, 2]
    assert head.raw_range == pytest.approx((raw.min(), raw.max()))


def test_attends_most_is_the_argmax_over_earlier_positions(report, trace):
    for layer in report.attention:
        weights = trace[1][f"layers.{layer.layer}.attention.weights"][0]
        for head in layer.heads:
            for i, attends in enumerate(head.attends):
                row = weights[head.head, i]
                if i == 0:
                    assert attends.earlier is None
                else:
                    assert attends.earlier.position == int(np.argmax(row[:i]))  # itself excluded
                    assert attends.earlier.weight == pytest.approx(float(row[:i].max()))
                assert attends.overall.position == int(np.argmax(row[:i + 1]))


def test_the_else_if_question(report, trace):
    question = report.question
    assert (question.query, question.key, question.query_position, question.key_position) == ("else", "if", 1, 0)
    assert len(question.answers) == 8
    for answer in question.answers:
        weights = trace[1][f"layers.{answer.layer}.attention.weights"][0, answer.head]
        assert answer.weight == pytest.approx(float(weights[1, 0]))
        assert answer.rank == 1  # `if` is the only earlier word of `else`
    text = render(report, color=False)
    assert "Does `else` look at `if`?" in text
    assert text.count("layer 0 head 0: else → if (") == 1


def test_norm_statistics(report, model, trace):
    eps = model.config.ln_eps
    for layer in report.feed_forward:
        assert layer.keeps_shape and layer.shapes["feed_forward.hidden_pre"] == [1, 5, 256]
        assert 0.0 < layer.relu_zero_fraction < 1.0
        for norm in layer.norms:
            before = trace[1][f"layers.{layer.layer}.{norm.input_name}"].astype(np.float64)
            assert norm.before.mean == pytest.approx(before.mean())
            assert norm.before.std == pytest.approx(before.std())
            assert abs(norm.standardized.mean) < 1e-9
            assert norm.standardized.std == pytest.approx(1.0, abs=1e-3)
            assert norm.standardized.row_std_range[0] == pytest.approx(1.0, abs=1e-3)
            assert max(abs(v) for v in norm.standardized.row_mean_range) < 1e-9
            assert norm.max_error < 1e-5  # the affine part of the recomputation gives the trace's value
    assert np.allclose(standardize(np.array([[1.0, 2.0, 3.0]]), 0.0), [[-1.224744871, 0.0, 1.224744871]])


def test_top_k_is_sorted_and_is_the_softmax_of_the_last_logits(report, model, trace):
    logits = trace[0]
    output = report.output
    assert output.logits_shape == [1, 5, model.config.vocab_size] and output.position == 4
    probabilities = softmax64(logits[0, -1])
    assert [c.probability for c in output.top] == sorted((c.probability for c in output.top), reverse=True)
    assert [c.id for c in output.top] == list(np.argsort(-probabilities, kind="stable")[:5])
    for c in output.top:
        assert c.probability == pytest.approx(probabilities[c.id]) and c.word == model.vocab[c.id]
    assert output.argmax.id == int(np.argmax(logits[0, -1])) == output.top[0].id
    assert output.probability_sum == pytest.approx(1.0)


def test_the_loop_is_the_notebook_mode_of_generate(report, model):
    expected = generate(model, model.config, model.vocab, [t.id for t in report.input.tokens], 6, mode="notebook")
    assert [s.id for s in report.loop.steps] == [s.id for s in expected.steps]
    assert [s.word for s in report.loop.steps] == [s.word for s in expected.steps]
    assert [s.probability for s in report.loop.steps] == pytest.approx([s.probability for s in expected.steps])
    assert [s.context_shape for s in report.loop.steps] == [[1, 5 + k] for k in range(6)]
    assert report.loop.words == DEFAULT_PROMPT.split() + [s.word for s in expected.steps]


def test_a_prompt_longer_than_max_seq_len_keeps_its_end(tmp_path):
    config = ModelConfig(vocab_size=16, d_model=8, n_heads=2, d_ff=8, max_seq_len=4)
    path = tmp_path / "small.safetensors"
    save_checkpoint(path, random_params(config, 1), config, random_vocab(16))
    small = numpy_ref.load(path)
    result = inspect(small, "if else endif eval callp c", steps=3, top_k=100)
    assert [t.word for t in result.input.tokens] == ["endif", "eval", "callp", "c"]
    assert result.input.dropped == 2 and any("last 4" in note for note in result.notes)
    assert len(result.output.top) == 16
    assert all(step.context_shape == [1, 4] for step in result.loop.steps)


# ---------------------------------------------------------------------------
# The terminal


def test_terminal_text_without_colour_has_no_escapes_and_with_colour_has(report):
    plain = render(report, color=False)
    assert not ANSI.search(plain)
    assert "░" in plain or "▒" in plain or "▓" in plain
    assert "█" in plain and "else → if (" in plain
    coloured = render(report, color=True)
    assert ANSI.search(coloured) and "48;5;" in coloured


def test_use_color_follows_the_flag_the_terminal_and_no_color():
    class Tty:
        def isatty(self):
            return True

    assert use_color("auto", Tty(), {}) is True
    assert use_color("auto", Tty(), {"NO_COLOR": "1"}) is False
    assert use_color("auto", Tty(), {"NO_COLOR": ""}) is True  # the convention: set and not empty
    assert use_color("auto", object(), {}) is False
    assert use_color("always", object(), {"NO_COLOR": "1"}) is True
    assert use_color("never", Tty(), {}) is False


def test_inspect_command_colour_flags(random_path, capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["inspect", "--checkpoint", str(random_path), "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert not ANSI.search(out) and "5. The loop" in out
    assert main(["inspect", "--checkpoint", str(random_path), "--steps", "1", "--color", "always"]) == 0
    assert ANSI.search(capsys.readouterr().out)


def test_inspect_command_bad_input_exits_2(random_path, tmp_path, capsys):
    assert main(["inspect", "--checkpoint", str(tmp_path / "missing.safetensors")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["inspect", "--checkpoint", str(random_path), "--prompt", "   "]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["inspect", "--checkpoint", str(random_path), "--steps", "-1"]) == 2
    assert main(["inspect", "--checkpoint", str(random_path), "--top-k", "0"]) == 2
    out = tmp_path / "nowhere" / "page.html"
    assert main(["inspect", "--checkpoint", str(random_path), "--html", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err and not out.exists()


# ---------------------------------------------------------------------------
# The page


class Cells(HTMLParser):
    """The cells of every heat map (table.heatmap td) with their attributes."""

    def __init__(self):
        super().__init__()
        self.depth = 0  # inside a heat-map table
        self.cells, self.external = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "heatmap" in (attrs.get("class") or "").split():
            self.depth += 1
        elif tag == "td" and self.depth:
            self.cells.append(attrs)
        for name in ("src", "href", "data", "action"):
            if name in attrs:
                self.external.append((tag, name, attrs[name]))
        if tag in ("script", "link", "iframe", "img", "object", "embed"):
            self.external.append((tag, "", ""))

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1


def test_the_page_is_self_contained_and_every_heat_map_cell_has_a_title(report, model, random_path, tmp_path):
    out = tmp_path / "page.html"
    assert main(["inspect", "--checkpoint", str(random_path), "--steps", "3", "--html", str(out),
                 "--color", "never"]) == 0
    page = out.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]  # no temporary file left
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "http" not in page.lower() and "url(" not in page
    parser = Cells()
    parser.feed(page)
    assert parser.external == []
    config = model.config
    assert len(parser.cells) == config.n_layers * config.n_heads * 5 * 5
    assert all(cell.get("title") for cell in parser.cells)
    visible = [cell for cell in parser.cells if "masked" not in cell["class"]]
    assert len(visible) == config.n_layers * config.n_heads * 15
    assert all("weight 0." in cell["title"] or "weight 1." in cell["title"] for cell in visible)
    assert "else → if: weight" in page
    for section in ("1. Input", "2. Attention", "3. Feed-forward and norms", "4. Output", "5. The loop"):
        assert section in page
    assert "causal mask" in page and "standardised" in page and "about 0 and 1" in page


def test_heatmap_escapes_words_and_titles():
    fragment = heatmap([[1.0, 0.0], [0.25, 0.75]], ["<if>", 'a"b'])
    assert "<if>" not in fragment and "&lt;if&gt;" in fragment and "a&quot;b" in fragment
    assert 'title="a&quot;b → &lt;if&gt;: weight 0.250000"' in fragment


def test_inspect_runs_where_importing_torch_fails(random_path, tmp_path):
    out = tmp_path / "page.html"
    script = textwrap.dedent(f"""
        import sys
        from numpy_ref_cli.main import main
        code = main(["inspect", "--checkpoint", {str(random_path)!r}, "--steps", "2", "--html", {str(out)!r}])
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
        print("exit", code)
    """)
    result = run_without_torch(script)
    assert result.returncode == 0, result.stderr
    assert "exit 0" in result.stdout and "5. The loop" in result.stdout
    assert out.exists()
