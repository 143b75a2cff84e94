"""A count-based baseline: interpolated modified Kneser-Ney n-gram models (n = 1..5).

The trained transformer has to beat the best count-based model on the evaluation file;
this module is that model, written to be read. Words come from
`numpy_ref.vocab.read_words` and the vocabulary from `numpy_ref.vocab.build_vocabulary`,
exactly as SPEC "Tokens and vocabulary" defines them.

    from numpy_ref.vocab import build_vocabulary, read_words
    from rpg_corpus.ngram import KneserNey, evaluate, transformer_target_positions

    train, test = read_words("data/rpg-training-tokenized.txt"), read_words("data/rpg-evaluation-tokenized.txt")
    model = KneserNey(order=5).fit(train, vocabulary=build_vocabulary(train, test))
    model.prob("endif", ["<nl>", "callp", "log", "<nl>"])    # P(endif | the last 4 words)
    evaluate(model, test)              # (a) nats per token, every token but the first
    evaluate(model, test, seq_len=64)  # (b) the transformer's targets, history cut at each row

    python -m rpg_corpus.ngram --train data/rpg-training-tokenized.txt \\
        --eval data/rpg-evaluation-tokenized.txt [--max-order 5] [--json]

The model (Chen & Goodman 1998, "An empirical study of smoothing techniques for language
modeling", section 3, interpolated modified Kneser-Ney). For an order-n model and a word w
after the history h (the last n-1 words):

    p_k(w | h) = max(c_k(h w) - D_k(c_k(h w)), 0) / sum_v c_k(h v)  +  gamma_k(h) * p_{k-1}(w | h')
    gamma_k(h) = (D_k1 N1(h .) + D_k2 N2(h .) + D_k3+ N3+(h .)) / sum_v c_k(h v)
    p_0(w)     = 1 / |V|                       (uniform over the real words: see below)

where h' is h without its first word and N_r(h .) is the number of distinct words that follow
h with count exactly r (N3+: at least 3). The count c_k is the raw count for the highest
order and the continuation count N1+(. h w) (the number of distinct words seen just before
h w) for every lower order. The three discounts of each order and each kind of count come
from that order's count-of-counts n_r (the number of k-grams whose count is exactly r):

    Y = n1 / (n1 + 2 n2),  D1 = 1 - 2 Y n2 / n1,  D2 = 2 - 3 Y n3 / n2,  D3+ = 3 - 4 Y n4 / n3

Decisions (each one a place where the literature or the brief left a choice):

* Uniform floor over the real words. [PAD] (id 0) never occurs in a word stream, so it gets
  probability 0 and the floor is 1 / (|vocabulary| - 1) over every other word of the
  vocabulary, including the words that occur only in the evaluation file. Distributions over
  the whole vocabulary (with [PAD]) sum to 1.
* The unigram level is the same formula with an empty history: for an order-1 model it is
  the discounted maximum-likelihood unigram (raw counts) interpolated with the uniform floor,
  the floor's weight being the discounted mass gamma = (D1 n1 + D2 n2 + D3+ n3+) / N rather
  than a hand-picked constant; in higher-order models it is Kneser-Ney's continuation
  unigram, interpolated with the uniform floor the same way.
* Lower-order discounts are estimated from the count-of-counts of the continuation counts
  (what SRILM and KenLM do), highest-order discounts from the raw counts.
* Discount fallback: when the formulas cannot be evaluated (some n_r is 0) or give a discount
  outside 0 < D_r <= r, that order's three discounts become KenLM's fallback (0.5, 1.0, 1.5)
  and the level records `fallback = True`. This only happens on tiny corpora.
* No sentence boundaries: the training file is one stream (with `<nl>` as a word). The first
  word of the stream has no left neighbour, so continuation counts only count the left
  neighbours that exist.
* A history shorter than n-1 words (the start of the stream, or the start of a transformer
  row) gets the distribution of the (len(h)+1)-gram model fitted on the same data: its top
  level uses raw counts, not continuation counts (the continuation distribution is only
  right when a longer context exists but was not seen). So `KneserNey(5).prob(w, h)` with
  len(h) == 2 equals `KneserNey(3).prob(w, h)`.
* A context never seen at some level skips that level (its gamma is taken as 1).

Top-1 accuracy (the argmax over the whole vocabulary) is computed exactly and cheaply: a word
that has no count at any level above the unigram level has probability G * p_1(w), where G
is the product of the gammas above, so the best such word is the first in a precomputed
ranking of p_1 that is not among the few words seen after the history; only those few are
scored one by one. Ties go to the lowest vocabulary index.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from numpy_ref.data import batch, batches_per_epoch
from numpy_ref.errors import InputError, NumpyRefError
from numpy_ref.vocab import PAD_WORD, build_vocabulary, read_words

COUNT = "count"                # raw counts c(h w): the highest order (and a short history's top)
CONTINUATION = "continuation"  # N1+(. h w): every lower order
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
DEFAULT_TRAIN = "data/rpg-training-tokenized.txt"
DEFAULT_EVAL = "data/rpg-evaluation-tokenized.txt"


def count_of_counts(counts) -> tuple[int, int, int, int]:
    """(n1, n2, n3, n4): how many of the given counts are exactly 1, 2, 3 and 4."""
    tally = Counter(c for c in counts if c <= 4)
    return tally[1], tally[2], tally[3], tally[4]


def modified_kn_discounts(n1: int, n2: int, n3: int, n4: int) -> tuple[tuple[float, float, float], bool]:
    """Chen & Goodman's (D1, D2, D3+) from the count-of-counts, and whether the fallback was used."""
    if min(n1, n2, n3) > 0:
        y = n1 / (n1 + 2 * n2)
        discounts = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
        if all(0 < d <= r for r, d in zip((1, 2, 3), discounts)):
            return discounts, False
    return FALLBACK_DISCOUNTS, True


class Level:
    """One level of the interpolation: the k-grams of one order with one kind of count.

    counts:    k-gram tuple -> count (raw or continuation)
    contexts:  (k-1)-gram tuple -> (sum of the counts after it, its gamma)
    discounts: (D1, D2, D3+); `fallback` tells whether they are the fallback values
    """

    def __init__(self, order: int, kind: str, counts: dict):
        self.order, self.kind, self.counts = order, kind, counts
        self.count_of_counts = count_of_counts(counts.values())
        self.discounts, self.fallback = modified_kn_discounts(*self.count_of_counts)
        self.discount_of = (0.0,) + self.discounts  # indexed by min(count, 3)
        tallies: dict[tuple, list[int]] = {}  # context -> [total, N1, N2, N3+]
        for gram, c in counts.items():
            tally = tallies.get(gram[:-1])
            if tally is None:
                tally = tallies[gram[:-1]] = [0, 0, 0, 0]
            tally[0] += c
            tally[min(c, 3)] += 1
        d1, d2, d3 = self.discounts
        self.contexts = {ctx: (t, (d1 * n1 + d2 * n2 + d3 * n3) / t) for ctx, (t, n1, n2, n3) in tallies.items()}
        self._successors = None

    def successors(self, context: tuple, index: dict) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary indices, discounted terms (c - D) / total) of the words seen after `context`."""
        if self._successors is None:
            grouped: dict[tuple, list] = {}
            for gram, c in self.counts.items():
                grouped.setdefault(gram[:-1], []).append((index[gram[-1]], c))
            self._successors = grouped
        entry = self._successors[context]
        if isinstance(entry, list):  # turned into arrays on first use
            total = self.contexts[context][0]
            idx = np.array([i for i, _ in entry], dtype=np.int64)
            terms = np.array([(c - self.discount_of[min(c, 3)]) / total for _, c in entry])
            entry = self._successors[context] = (idx, terms)
        return entry


def ngram_counts(tokens: list, k: int) -> Counter:
    """Raw counts of every k-gram (a tuple of k tokens) of the stream."""
    return Counter(zip(*(tokens[i:] for i in range(k))))


class KneserNey:
    """Interpolated modified Kneser-Ney of order `order` (1 = unigram) over a vocabulary."""

    def __init__(self, order: int = 5, pad=PAD_WORD):
        if not isinstance(order, int) or order < 1:
            raise InputError(f"an n-gram order must be an integer of at least 1, not {order!r}.")
        self.order, self.pad = order, pad
        self.levels: dict[tuple[int, str], Level] = {}

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, tokens, vocabulary=None) -> "KneserNey":
        """Count the training stream (words or ids). `vocabulary`: every token to predict, in
        index order (default: the training tokens in order of first appearance); `pad` is in it
        with probability 0, and every training token must be in it."""
        tokens = tokens.tolist() if isinstance(tokens, np.ndarray) else list(tokens)
        if not tokens:
            raise InputError("an n-gram model needs at least one training token.")
        vocabulary = list(dict.fromkeys(tokens)) if vocabulary is None else list(vocabulary)
        self.vocabulary = vocabulary
        self.index = {word: i for i, word in enumerate(vocabulary)}
        if len(self.index) != len(vocabulary):
            raise InputError("the vocabulary lists a word twice.")
        if self.pad in self.index and self.pad in set(tokens):
            raise InputError(f"the padding word {self.pad!r} occurs in the training stream.")
        missing = [t for t in dict.fromkeys(tokens) if t not in self.index]
        if missing:
            raise InputError(f"{len(missing)} training word(s) are not in the vocabulary, e.g. {missing[0]!r}.")
        self.pad_index = self.index.get(self.pad)
        self.support_size = len(vocabulary) - (self.pad_index is not None)
        if self.support_size < 1:
            raise InputError("the vocabulary has no word to predict.")
        self.uniform = 1.0 / self.support_size
        self.n_train = len(tokens)

        raw = {k: ngram_counts(tokens, k) for k in range(1, self.order + 1)}
        self.levels = {(k, COUNT): Level(k, COUNT, raw[k]) for k in raw}
        for k in range(1, self.order):
            # N1+(. g): each distinct (k+1)-gram v g adds one distinct left neighbour to g.
            continuation = Counter(gram[1:] for gram in raw[k + 1])
            self.levels[(k, CONTINUATION)] = Level(k, CONTINUATION, continuation)
        # chains[m]: the levels used, lowest first, for a history of m words (0 <= m < order)
        self.chains = [
            [self.levels[(k, CONTINUATION)] for k in range(1, m + 1)] + [self.levels[(m + 1, COUNT)]]
            for m in range(self.order)
        ]
        self._unigram_ranking = {}
        self._predictions = {}
        return self

    def discounts(self, order: int, kind: str = COUNT) -> tuple[float, float, float]:
        """(D1, D2, D3+) of one order for raw counts (`COUNT`) or continuation counts."""
        return self.levels[(order, kind)].discounts

    # -- probabilities ---------------------------------------------------------------------

    def context(self, history) -> tuple:
        """The part of the history the model looks at: its last order-1 words."""
        history = tuple(history)
        return history[max(len(history) - (self.order - 1), 0):]

    def _check(self, word) -> None:
        if word not in self.index:
            raise InputError(f"the word {word!r} is not in the model's vocabulary.")

    def prob(self, word, history=()) -> float:
        """P(word | history): the history's last order-1 words are used (fewer if it is shorter)."""
        self._check(word)
        if self.index[word] == self.pad_index:
            return 0.0
        return self._prob(word, self.context(history))

    def log_prob(self, word, history=()) -> float:
        """Natural log of `prob`; -inf for [PAD]."""
        p = self.prob(word, history)
        return math.log(p) if p > 0 else -math.inf

    def _prob(self, word, h: tuple) -> float:
        m, p = len(h), self.uniform
        for level in self.chains[m]:
            ctx = h[m - level.order + 1:]
            stats = level.contexts.get(ctx)
            if stats is None:
                continue
            total, gamma = stats
            c = level.counts.get(ctx + (word,), 0)
            p = gamma * p + ((c - level.discount_of[min(c, 3)]) / total if c else 0.0)
        return p

    def distribution(self, history=()) -> np.ndarray:
        """P(. | history) over the whole vocabulary, in vocabulary order ([PAD] gets 0)."""
        h = self.context(history)
        vec = np.full(len(self.vocabulary), self.uniform)
        if self.pad_index is not None:
            vec[self.pad_index] = 0.0
        for level in self.chains[len(h)]:
            ctx = h[len(h) - level.order + 1:]
            stats = level.contexts.get(ctx)
            if stats is None:
                continue
            vec *= stats[1]
            idx, terms = level.successors(ctx, self.index)
            vec[idx] += terms
        return vec

    def _ranking(self, level: Level) -> tuple[np.ndarray, np.ndarray]:
        """The unigram level's probabilities p_1 over the vocabulary, and the indices by p_1 descending."""
        if level.kind not in self._unigram_ranking:
            vec = np.full(len(self.vocabulary), self.uniform)
            if self.pad_index is not None:
                vec[self.pad_index] = 0.0
            vec *= level.contexts[()][1]
            idx, terms = level.successors((), self.index)
            vec[idx] += terms
            self._unigram_ranking[level.kind] = (vec, np.argsort(-vec, kind="stable"))
        return self._unigram_ranking[level.kind]

    def predict(self, history=()):
        """The most probable next word (exact argmax of `distribution`; ties -> lowest index)."""
        h = self.context(history)
        best = self._predictions.get(h)
        if best is None:
            best = self._predictions[h] = self._argmax(h)
        return self.vocabulary[best]

    def _argmax(self, h: tuple) -> int:
        chain = self.chains[len(h)]
        gain, parts = 1.0, []  # above the unigram level: p(w) = sum_k G_k a_k(w) + G_1 p_1(w)
        for level in reversed(chain[1:]):
            ctx = h[len(h) - level.order + 1:]
            stats = level.contexts.get(ctx)
            if stats is None:
                continue
            parts.append((gain,) + level.successors(ctx, self.index))
            gain *= stats[1]
        p1, ranking = self._ranking(chain[0])
        if not parts:
            return int(ranking[0])
        candidates = np.unique(np.concatenate([idx for _, idx, _ in parts]))  # sorted
        scores = gain * p1[candidates]
        for g, idx, terms in parts:
            scores[np.searchsorted(candidates, idx)] += g * terms
        best = int(np.argmax(scores))  # first maximum = lowest index among equals
        best_index, best_score = int(candidates[best]), scores[best]
        # The best word seen after none of the contexts: the first of the ranking not a candidate.
        head = ranking[: len(candidates) + 1]
        other = int(head[np.argmin(np.isin(head, candidates))])
        other_score = gain * p1[other]
        if other_score > best_score or (other_score == best_score and other < best_index):
            return other
        return best_index


# -- evaluation ------------------------------------------------------------------------------


def transformer_target_positions(n_tokens: int, seq_len: int = 64, batch_size: int = 4) -> np.ndarray:
    """The rows the transformer's evaluation reads, as stream positions: [R, seq_len + 1].

    Exactly `numpy_ref.data`'s pipeline: the stream is cut into chunks of (seq_len + 1) *
    batch_size tokens, each reshaped to batch_size rows of seq_len + 1; the last chunk is
    completed from the stream's start (positions wrap modulo n_tokens). In row r, column 0
    is never a target; the target of column j >= 1 is the token at rows[r, j] and its
    history is the tokens at rows[r, :j] only. The evaluation loss is the mean over batches
    of each batch's mean, which equals the mean over all targets (every batch has the same
    number of targets, and no target is [PAD]).
    """
    if n_tokens < 2:
        raise InputError(f"an evaluation stream needs at least 2 tokens; it has {n_tokens}.")
    stream = np.arange(n_tokens, dtype=np.int64)
    rows = []
    for index in range(batches_per_epoch(n_tokens, batch_size, seq_len)):
        inputs, targets = batch(stream, index, batch_size, seq_len)
        rows.append(np.concatenate([inputs[:, :1], targets], axis=1))
    return np.concatenate(rows, axis=0)


@dataclass
class Score:
    cross_entropy: float       # mean of -ln P(target | history), nats per target
    n_targets: int
    accuracy: float | None     # top-1, when asked for

    @property
    def perplexity(self) -> float:
        return math.exp(self.cross_entropy)


def _targets(words: list, order: int, rows: np.ndarray | None):
    """(target, history) pairs: the whole stream (a), or the transformer's rows (b)."""
    keep = order - 1
    if rows is None:
        for i in range(1, len(words)):
            yield words[i], tuple(words[max(i - keep, 0):i])
    else:
        for row in rows.tolist():
            row_words = [words[p] for p in row]
            for j in range(1, len(row_words)):
                yield row_words[j], tuple(row_words[max(j - keep, 0):j])


def score(model: KneserNey, words, *, seq_len: int | None = None, batch_size: int = 4,
          accuracy: bool = False) -> Score:
    """Cross-entropy (and top-1 accuracy if asked) of the model on a word stream.

    seq_len None: (a) every token but the first, its history taken from the stream across any
    row boundary. seq_len given: (b) the transformer's targets (`transformer_target_positions`),
    each history cut at its row's start.
    """
    words = list(words)
    rows = None if seq_len is None else transformer_target_positions(len(words), seq_len, batch_size)
    if rows is None and len(words) < 2:
        raise InputError(f"an evaluation stream needs at least 2 tokens; it has {len(words)}.")
    for word in dict.fromkeys(words):
        model._check(word)
    log_probs, correct = [], 0
    for target, history in _targets(words, model.order, rows):
        p = model._prob(target, history)
        if p <= 0:
            raise InputError(f"the word {target!r} has probability 0 (it is the padding word).")
        log_probs.append(math.log(p))
        if accuracy:
            correct += model.predict(history) == target
    n = len(log_probs)
    return Score(-math.fsum(log_probs) / n, n, correct / n if accuracy else None)


def evaluate(model: KneserNey, words, seq_len: int | None = None, batch_size: int = 4) -> float:
    """Cross-entropy in nats per token: (a) with seq_len None, (b) with seq_len (see `score`)."""
    return score(model, words, seq_len=seq_len, batch_size=batch_size).cross_entropy


# -- command line ----------------------------------------------------------------------------


def run(train_path, eval_path, max_order: int = 5, seq_len: int = 64, batch_size: int = 4,
        accuracy: bool = True) -> dict:
    """Fit orders 1..max_order on the training file and score them on the evaluation file."""
    if max_order < 1:
        raise InputError(f"--max-order must be at least 1, not {max_order}.")
    if seq_len < 1 or batch_size < 1:
        raise InputError("--seq-len and --batch-size must be at least 1.")
    train_words, eval_words = read_words(train_path), read_words(eval_path)
    for path, words in ((train_path, train_words), (eval_path, eval_words)):
        if len(words) < 2:
            raise InputError(f"{path}: needs at least 2 words; it has {len(words)}.")
    vocabulary = build_vocabulary(train_words, eval_words)
    seen = set(train_words)
    unseen = [w for w in eval_words if w not in seen]
    report = {
        "train": str(train_path), "eval": str(eval_path),
        "train_tokens": len(train_words), "eval_tokens": len(eval_words),
        "vocabulary": len(vocabulary), "eval_only_types": len(set(unseen)), "eval_only_tokens": len(unseen),
        "seq_len": seq_len, "batch_size": batch_size, "orders": [],
    }
    for order in range(1, max_order + 1):
        start = time.perf_counter()
        model = KneserNey(order).fit(train_words, vocabulary)
        fitted = time.perf_counter()
        stream = score(model, eval_words, accuracy=accuracy)
        rows = score(model, eval_words, seq_len=seq_len, batch_size=batch_size, accuracy=accuracy)
        report["targets_stream"], report["targets_rows"] = stream.n_targets, rows.n_targets
        report["orders"].append({
            "order": order,
            "ce_stream": stream.cross_entropy, "ppl_stream": stream.perplexity, "acc_stream": stream.accuracy,
            "ce_rows": rows.cross_entropy, "ppl_rows": rows.perplexity, "acc_rows": rows.accuracy,
            "fit_seconds": fitted - start, "eval_seconds": time.perf_counter() - fitted,
            "discounts": {f"{level.order}-gram {level.kind}": {"D1, D2, D3+": list(level.discounts),
                                                                 "fallback": level.fallback}
                          for level in model.levels.values()},
        })
    for key in ("stream", "rows"):
        report[f"best_order_{key}"] = min(report["orders"], key=lambda r: r[f"ce_{key}"])["order"]
    return report


def format_report(report: dict) -> str:
    acc = report["orders"][0]["acc_stream"] is not None
    lines = [
        f"training {report['train']}: {report['train_tokens']:,} words; evaluation {report['eval']}: "
        f"{report['eval_tokens']:,} words ({report['eval_only_tokens']:,} of them, {report['eval_only_types']:,} "
        f"distinct, never seen in training); vocabulary {report['vocabulary']:,} incl. [PAD]",
        f"(a) stream:  every token but the first, history across row boundaries ({report['targets_stream']:,} targets)",
        f"(b) rows:    the transformer's targets, rows of {report['seq_len'] + 1} in batches of {report['batch_size']}, "
        f"history cut at each row start ({report['targets_rows']:,} targets)",
        "",
        f"{'order':>5}  {'CE (a)':>8}  {'PPL (a)':>8}" + (f"  {'acc (a)':>7}" if acc else "")
        + f"  {'CE (b)':>8}  {'PPL (b)':>8}" + (f"  {'acc (b)':>7}" if acc else "") + f"  {'fit s':>6}  {'eval s':>6}",
    ]
    for r in report["orders"]:
        lines.append(
            f"{r['order']:>5}  {r['ce_stream']:>8.4f}  {r['ppl_stream']:>8.3f}" + (f"  {r['acc_stream']:>7.2%}" if acc else "")
            + f"  {r['ce_rows']:>8.4f}  {r['ppl_rows']:>8.3f}" + (f"  {r['acc_rows']:>7.2%}" if acc else "")
            + f"  {r['fit_seconds']:>6.2f}  {r['eval_seconds']:>6.2f}")
    best = {key: next(r for r in report["orders"] if r["order"] == report[f"best_order_{key}"]) for key in ("stream", "rows")}
    lines += [
        "",
        f"best order (a): {best['stream']['order']} ({best['stream']['ce_stream']:.4f} nats/token)",
        f"best order (b): {best['rows']['order']} ({best['rows']['ce_rows']:.4f} nats/token)"
        "  <- compare with the transformer's evaluation loss",
        "CE: cross-entropy in nats per token; PPL = exp(CE).",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rpg_corpus.ngram",
        description="Interpolated modified Kneser-Ney n-gram baselines (orders 1..N) fitted on the training "
                    "file and scored on the evaluation file, (a) over the whole stream and (b) over the "
                    "transformer's evaluation targets with the history cut at each row.")
    parser.add_argument("--train", default=DEFAULT_TRAIN, help=f"tokenized training text (default {DEFAULT_TRAIN})")
    parser.add_argument("--eval", default=DEFAULT_EVAL, help=f"tokenized evaluation text (default {DEFAULT_EVAL})")
    parser.add_argument("--max-order", type=int, default=5, help="fit orders 1..N (default 5)")
    parser.add_argument("--seq-len", type=int, default=64, help="the transformer's tokens per row minus one (default 64)")
    parser.add_argument("--batch-size", type=int, default=4, help="the transformer's evaluation batch (default 4)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip top-1 accuracy")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = run(args.train, args.eval, args.max_order, args.seq_len, args.batch_size, not args.no_accuracy)
    except NumpyRefError as error:
        print(f"ngram: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
