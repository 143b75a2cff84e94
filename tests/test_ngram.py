"""The Kneser-Ney n-gram baseline (rpg_corpus/ngram.py): a proper distribution at every order,
Chen & Goodman's discounts checked by hand, the uniform floor, the transformer's row targets,
and the command line. Tiny corpora only: the whole file runs in well under a second or two."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
from rpg_corpus import ngram

from numpy_ref.errors import InputError
from numpy_ref.vocab import PAD_WORD, build_vocabulary, words_of_text

KneserNey = ngram.KneserNey


def markov_stream(n: int, seed: int) -> list[str]:
    """A seeded stream with structure at several orders (so every level has mixed counts)."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(12)] + ["<nl>"]
    out = ["w0", "w1"]
    while len(out) < n:
        a, b = out[-2], out[-1]
        if rng.random() < 0.6:
            out.append(words[(words.index(a) * 3 + words.index(b)) % len(words)])
        else:
            out.append(rng.choice(words[: 4 + len(out) % 9]))
    return out


TRAIN = markov_stream(1500, seed=1)
EVAL = markov_stream(300, seed=2) + ["only_in_eval", "w3", "also_new"]
VOCAB = build_vocabulary(TRAIN, EVAL)


@pytest.fixture(scope="module")
def models():
    return {n: KneserNey(n).fit(TRAIN, VOCAB) for n in range(1, 6)}


def histories():
    return [
        (), ("w0",), ("w3", "w4"), tuple(TRAIN[100:104]), tuple(TRAIN[-4:]),  # seen
        ("only_in_eval",), ("w1", "only_in_eval", "w2"), ("w11", "w11", "w11", "w11"),  # unseen contexts
        ("not_a_word", "w5"), tuple(TRAIN[:9]),  # out of vocabulary, longer than the order
    ]


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_probabilities_over_the_vocabulary_sum_to_one(models, order):
    model = models[order]
    for history in histories():
        probs = [model.prob(word, history) for word in VOCAB]
        assert math.fsum(probs) == pytest.approx(1.0, abs=1e-9), history
        assert model.prob(PAD_WORD, history) == 0.0
        assert min(probs[1:]) > 0.0
        np.testing.assert_allclose(model.distribution(history), probs, rtol=1e-12, atol=0)


def test_discounts_and_unigram_probability_by_hand():
    # Raw unigram counts: a 4, b 3, c 2, d 1, e 1  ->  n1 = 2 (d, e), n2 = 1 (c), n3 = 1 (b), n4 = 1 (a).
    model = KneserNey(1).fit("a a a a b b b c c d e".split(), [PAD_WORD, *"abcde", "z"])
    n1, n2, n3, n4 = 2, 1, 1, 1
    y = Fraction(n1, n1 + 2 * n2)
    d1, d2, d3 = 1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3
    assert (d1, d2, d3) == (Fraction(1, 2), Fraction(1, 2), Fraction(1))  # worked by hand too
    assert model.levels[(1, ngram.COUNT)].count_of_counts == (n1, n2, n3, n4)
    assert model.discounts(1) == pytest.approx((float(d1), float(d2), float(d3)), abs=1e-15)
    assert not model.levels[(1, ngram.COUNT)].fallback
    total = 11
    gamma = (d1 * 2 + d2 * 1 + d3 * 2) / total  # N1 = 2 (d, e), N2 = 1 (c), N3+ = 2 (a, b)
    uniform = Fraction(1, 6)  # a b c d e z: [PAD] is not predicted
    expected = {"a": (4 - d3) / total + gamma * uniform, "b": (3 - d3) / total + gamma * uniform,
                "c": (2 - d2) / total + gamma * uniform, "d": (1 - d1) / total + gamma * uniform,
                "z": gamma * uniform}
    for word, p in expected.items():
        assert model.prob(word) == pytest.approx(float(p), rel=1e-12)


def test_continuation_discounts_and_bigram_probability_by_hand():
    stream = "a x b x c x d x a x a y b y c y a z b w".split()
    model = KneserNey(2).fit(stream, [PAD_WORD, *"abcdwxyz"])
    # Distinct left neighbours (not occurrences: "a x" occurs twice, so x follows 5 words but 4 distinct):
    # x {a b c d} = 4; b {x y z} = 3; y {a b c} = 3; a {x y} = 2; c {x y} = 2; d {x}, z {a}, w {b} = 1
    # ->  n1 = 3, n2 = 2, n3 = 2, n4 = 1.
    continuation = {"x": 4, "b": 3, "y": 3, "a": 2, "c": 2, "d": 1, "z": 1, "w": 1}
    n1, n2, n3, n4 = 3, 2, 2, 1
    y = Fraction(n1, n1 + 2 * n2)
    d1, d2, d3 = 1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3
    assert (d1, d2, d3) == (Fraction(3, 7), Fraction(5, 7), Fraction(15, 7))
    assert model.levels[(1, ngram.CONTINUATION)].count_of_counts == (n1, n2, n3, n4)
    assert model.discounts(1, ngram.CONTINUATION) == pytest.approx((float(d1), float(d2), float(d3)), abs=1e-15)
    # Raw bigram counts: "a x" and "x a" twice, 15 others once: n3 = 0, so the bigram discounts
    # fall back to (0.5, 1, 1.5).
    assert model.levels[(2, ngram.COUNT)].count_of_counts == (15, 2, 0, 0)
    assert model.levels[(2, ngram.COUNT)].fallback
    assert model.discounts(2) == ngram.FALLBACK_DISCOUNTS
    total = sum(continuation.values())  # 17 distinct bigrams
    gamma0 = (d1 * n1 + d2 * n2 + d3 * 3) / total  # N3+ = 3 (x, b, y)
    p_cont = {w: (c - (d1, d2, d3)[min(c, 3) - 1]) / total + gamma0 * Fraction(1, 8) for w, c in continuation.items()}
    # After x: b, c, d once, a twice -> total 5; gamma = (0.5 * 3 + 1.0 * 1) / 5 = 1/2.
    half = Fraction(1, 2)
    assert model.prob("b", ["x"]) == pytest.approx(float((1 - half) / 5 + half * p_cont["b"]), rel=1e-12)
    assert model.prob("a", ["x"]) == pytest.approx(float((2 - 1) / Fraction(5) + half * p_cont["a"]), rel=1e-12)
    assert model.prob("y", ["x"]) == pytest.approx(float(half * p_cont["y"]), rel=1e-12)
    # An unseen context skips its level: the continuation unigram alone.
    assert model.prob("b", ["w"]) == pytest.approx(float(p_cont["b"]), rel=1e-12)


def test_discount_fallback_when_the_formula_is_out_of_range():
    assert ngram.modified_kn_discounts(0, 5, 5, 5) == (ngram.FALLBACK_DISCOUNTS, True)
    assert ngram.modified_kn_discounts(10, 1, 50, 1) == (ngram.FALLBACK_DISCOUNTS, True)  # D2 < 0
    (d1, d2, d3), fallback = ngram.modified_kn_discounts(100, 40, 20, 10)
    y = 100 / 180
    assert not fallback and (d1, d2, d3) == pytest.approx((1 - 2 * y * 0.4, 2 - 3 * y * 0.5, 3 - 4 * y * 0.5))


def test_an_unseen_word_gets_nonzero_probability(models):
    for model in models.values():
        for history in histories():
            assert model.prob("only_in_eval", history) > 0
            assert math.isfinite(model.log_prob("also_new", history))
        assert math.isfinite(ngram.evaluate(model, EVAL))
    with pytest.raises(InputError):
        models[3].prob("not_a_word", ["w1"])


def test_a_short_history_is_the_lower_order_model(models):
    for history in [(), ("w2",), ("w3", "w4"), ("w7", "w0", "w1")]:
        lower = models[len(history) + 1]
        for word in VOCAB[1:]:
            assert models[5].prob(word, history) == lower.prob(word, history)


def test_higher_orders_fit_a_repetitive_corpus_better():
    # After "a" comes b, c or d; after "x a" always b, after "y a" always c, after "z a" always d.
    pattern = "x a b y a c z a d".split()
    train, test = pattern * 60, pattern * 4
    vocab = build_vocabulary(train, test)
    ce = {n: ngram.evaluate(KneserNey(n).fit(train, vocab), test) for n in range(1, 6)}
    assert ce[1] > ce[2] > ce[3]
    assert ce[3] < 0.5 * ce[2] and ce[5] < ce[2]
    assert max(ce[3], ce[4], ce[5]) < 0.1


def test_predict_is_the_argmax_of_the_distribution(models):
    rng = random.Random(7)
    for model in models.values():
        for _ in range(40):
            i = rng.randrange(5, len(EVAL))
            history = EVAL[i - rng.randrange(0, 5):i]
            dist = model.distribution(history)
            assert model.index[model.predict(history)] == int(np.argmax(dist))
    # After q come ten words once each; none is as likely as "a", which never follows q.
    stream = [w for i in range(10) for w in ("q", f"r{i}", "a", "a", "a", "a")]
    model = KneserNey(2).fit(stream)
    assert model.predict(["q"]) == "a" == model.vocabulary[int(np.argmax(model.distribution(["q"])))]
    assert model.prob("a", ["q"]) > model.prob("r3", ["q"])


def test_transformer_target_positions():
    # 10 tokens, rows of 4 in batches of 2: chunks of 8, two batches, the second wraps to the start.
    rows = ngram.transformer_target_positions(10, seq_len=3, batch_size=2)
    np.testing.assert_array_equal(rows, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1], [2, 3, 4, 5]])
    rows = ngram.transformer_target_positions(130, seq_len=64, batch_size=1)
    np.testing.assert_array_equal(rows, [np.arange(65), np.arange(65, 130)])
    assert ngram.transformer_target_positions(1000).shape == (4 * 4, 65)  # ceil(1000 / 260) batches


def test_row_scoring_cuts_the_history_at_each_row(models):
    words = EVAL[:10]
    model = models[3]
    expected = []
    for row in [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1], [2, 3, 4, 5]]:
        for j in range(1, 4):
            history = [words[p] for p in row[max(j - 2, 0):j]]
            expected.append(-model.log_prob(words[row[j]], history))
    result = ngram.score(model, words, seq_len=3, batch_size=2, accuracy=True)
    assert result.n_targets == 12
    assert result.cross_entropy == pytest.approx(sum(expected) / 12, rel=1e-12)
    stream = [-model.log_prob(words[i], words[max(i - 2, 0):i]) for i in range(1, 10)]
    assert ngram.evaluate(model, words) == pytest.approx(sum(stream) / 9, rel=1e-12)


def write_corpus(tmp_path):
    train, test = tmp_path / "train.txt", tmp_path / "eval.txt"
    train.write_text("c eval x = x + 1\n\nif x > 2\n  callp log\nendif\n" * 30)
    test.write_text("c eval y = x + 1\nif x > 2\ncallp log\nendif\n" * 3)
    assert "y" in words_of_text(test.read_text()) and "y" not in words_of_text(train.read_text())
    return train, test


def test_cli_prints_a_table(tmp_path):
    train, test = write_corpus(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "rpg_corpus.ngram", "--train", str(train), "--eval", str(test), "--max-order", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:1] == ["3"] for line in lines)
    assert "best order (b):" in done.stdout


def test_cli_json_and_errors(tmp_path, capsys):
    train, test = write_corpus(tmp_path)
    assert ngram.main(["--train", str(train), "--eval", str(test), "--max-order", "2", "--seq-len", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["order"] for r in report["orders"]] == [1, 2]
    assert report["eval_only_types"] == 1 and report["best_order_rows"] in (1, 2)
    for r in report["orders"]:
        assert r["ppl_rows"] == pytest.approx(math.exp(r["ce_rows"]))
        assert 0 <= r["acc_stream"] <= 1
    assert ngram.main(["--train", str(tmp_path / "missing.txt"), "--eval", str(test)]) == 2
    assert "missing.txt" in capsys.readouterr().err
