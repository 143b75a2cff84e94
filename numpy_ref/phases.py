"""The notebook's five inspection phases (SPEC "The notebook's inspection phases"), computed.

    import numpy_ref
    from numpy_ref.phases import inspect
    model = numpy_ref.load("data/rpg_model.safetensors")
    report = inspect(model, "if else endif eval callp", steps=8, top_k=5)
    report.input.rows_distinct, report.question.answers[0].top_earlier, report.loop.steps[0].word

Every check the notebook made is a number computed here, from one traced forward pass
(`Model.run_with_trace`) of the prompt as one sequence (B = 1, unpadded, the notebook's
sliced positions), never a sentence asserted in prose:

  1. input      each word, its id, whether it is in the vocabulary (an unknown word becomes
                the pad id); the embedding's shape; the first values of two rows; that the
                rows of different words differ and positional rows 0 and 1 differ (the
                largest absolute difference, > 0); that embed.out is embedding + position;
  2. attention  per layer: the shapes and the causal mask; per head: the raw and scaled score
                ranges versus the weights' range and row sums, the weights above the diagonal
                (0), and for each word the EARLIER word (positions before it, itself
                excluded) it weights most, and what it weights most overall (itself included);
  3. norms      the feed-forward's shapes (it keeps [1, S, E]); mean and standard deviation
                before each LayerNorm (the residual), after standardising ((x - mean) /
                sqrt(var + eps), before the affine part: about 0 and 1) and after it;
  4. output     the logits' shape; the softmax of the last position; the top k words;
  5. loop       the prompt grown by hand one word at a time (unpadded, argmax: what
                numpy_ref.generate calls the notebook mode), a row per step.

Everything returned is plain data (dataclasses of ints, floats, strings and lists), so the
terminal and the HTML renderers, the notebook and the tests read the same numbers. NumPy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import InputError
from .generate import softmax64

DEFAULT_PROMPT = "if else endif eval callp"
PREVIEW_VALUES = 6  # how many leading values of an embedding row are shown


# ---------------------------------------------------------------------------
# The data


@dataclass
class Token:
    """One word of the prompt. `label` names it on axes: the word as typed, with "#position"
    appended when the word occurs more than once; `known` is False for a word the vocabulary
    lacks (its id is then the pad id)."""

    position: int
    word: str
    id: int
    known: bool
    label: str


@dataclass
class RowPreview:
    position: int
    label: str
    id: int
    values: list[float]  # the first PREVIEW_VALUES values of the row


@dataclass
class PairDifference:
    """max |row_a - row_b| of the embedding rows of two positions."""

    a: int
    b: int
    label_a: str
    label_b: str
    max_abs: float
    same_id: bool  # the same id at both positions: the same row, a difference of 0 is expected


@dataclass
class InputPhase:
    tokens: list[Token]
    unknown: list[str]                 # the words not in the vocabulary (each became the pad id)
    dropped: int                       # words cut from the front (the prompt was longer than max_seq_len)
    shapes: dict                       # embed.weight, embed.tokens, pos_encoding, embed.pos, embed.out
    token_rows: list[RowPreview]       # the first values of two embedding rows
    pos_rows: list[RowPreview]         # the first values of positional rows 0 and 1
    out_rows: list[RowPreview]         # the first values of embed.out at the same two positions
    pairs: list[PairDifference]        # every pair of positions
    rows_distinct: bool                # every pair of different ids has different rows
    closest_pair: PairDifference | None  # the smallest difference between rows of different ids
    pos_difference: float | None       # max |pos[0] - pos[1]| (None when max_seq_len is 1)
    positions_differ: bool
    sum_error: float                   # max |embed.out - (embed.tokens + embed.pos)|: 0 when it is the sum


@dataclass
class Target:
    position: int
    label: str
    weight: float


@dataclass
class Attends:
    """What the word at `position` weights most: among the earlier words (None for the first
    word, which has none) and overall (itself included)."""

    position: int
    label: str
    earlier: Target | None
    overall: Target


@dataclass
class HeadPhase:
    layer: int
    head: int
    scores_raw: list[list[float]]      # [S, S], q @ k^T (unbounded, not yet masked)
    scores_scaled: list[list[float]]   # [S, S], / sqrt(D)
    weights: list[list[float]]         # [S, S], softmax rows; row = query, column = key
    raw_range: tuple[float, float]
    scaled_range: tuple[float, float]
    weights_range: tuple[float, float]  # over the visible entries (on and below the diagonal)
    hidden_max: float                  # the largest weight above the diagonal (0: the mask hides the future)
    row_sums: list[float]
    row_sum_error: float               # max |row sum - 1|
    attends: list[Attends]


@dataclass
class LayerAttention:
    layer: int
    shapes: dict                       # q, k, v, q_heads, ..., weights, context, context_merged, out
    mask: list[list[float]]            # [S, S]: 0 on and below the diagonal, mask_value above
    mask_ok: bool                      # equals triu(ones(S, S), 1) * mask_value exactly
    heads: list[HeadPhase]


@dataclass
class QuestionAnswer:
    layer: int
    head: int
    weight: float                      # the query word's weight on the key word
    rank: int                          # 1 = the earlier word it weights most
    top_earlier: Target                # the earlier word it weights most
    overall: Target                    # what it weights most, itself included


@dataclass
class Question:
    """Does the word `query` attend to the earlier word `key` (e.g. does `else` look at `if`)?"""

    query: str
    key: str
    query_position: int
    key_position: int
    answers: list[QuestionAnswer]


@dataclass
class Stats:
    """Mean and standard deviation of a [1, S, E] tensor: over all of it, and per position
    (LayerNorm standardises each position's E values), as ranges over the positions."""

    mean: float
    std: float
    row_mean_range: tuple[float, float]
    row_std_range: tuple[float, float]


@dataclass
class NormPhase:
    layer: int
    name: str                          # norm1 or norm2
    input_name: str                    # residual1 or residual2
    before: Stats                      # the residual sum that enters the LayerNorm
    standardized: Stats                # (x - mean) / sqrt(var + eps): about 0 and 1 per position
    after: Stats                       # * weight + bias: the block's trace value
    max_error: float                   # max |standardized * weight + bias - trace|: the recomputation agrees


@dataclass
class LayerFeedForward:
    layer: int
    shapes: dict                       # norm1 (its input), hidden_pre, hidden, out
    keeps_shape: bool                  # out has the input's shape
    relu_zero_fraction: float          # the share of hidden units the ReLU set to 0
    norms: list[NormPhase]


@dataclass
class Candidate:
    rank: int
    id: int
    word: str
    logit: float
    probability: float


@dataclass
class OutputPhase:
    logits_shape: list[int]
    position: int                      # the last position, whose logits predict the next word
    probability_sum: float
    top: list[Candidate]               # sorted by probability, highest first
    argmax: Candidate


@dataclass
class LoopStep:
    step: int
    context: list[str]                 # the words the model saw (the last max_seq_len)
    context_shape: list[int]
    id: int
    word: str
    probability: float
    runner_up: Candidate | None


@dataclass
class LoopPhase:
    prompt: list[str]
    steps: list[LoopStep]
    words: list[str]                   # the prompt grown by every chosen word


@dataclass
class Inspection:
    prompt: str
    dtype: str
    config: dict
    checkpoint: str | None
    input: InputPhase
    attention: list[LayerAttention]
    question: Question | None
    feed_forward: list[LayerFeedForward]
    output: OutputPhase
    loop: LoopPhase
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------
# Small helpers


def _floats(array) -> list:
    return np.asarray(array, dtype=np.float64).tolist()


def _range(array) -> tuple[float, float]:
    array = np.asarray(array, dtype=np.float64)
    return (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)


def stats(x) -> Stats:
    x = np.asarray(x, dtype=np.float64)
    return Stats(float(x.mean()), float(x.std()), _range(x.mean(axis=-1)), _range(x.std(axis=-1)))


def standardize(x, eps: float) -> np.ndarray:
    """LayerNorm before its affine part: (x - mean) / sqrt(var + eps) over the last axis."""
    x = np.asarray(x, dtype=np.float64)
    centered = x - x.mean(axis=-1, keepdims=True)
    return centered / np.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)


# ---------------------------------------------------------------------------
# The prompt


def tokens_of(model, prompt: str) -> tuple[list[Token], list[str], int]:
    """The prompt's words as Tokens (the last max_seq_len of them), the unknown words, and
    how many words were cut from the front."""
    words = prompt.split()
    if not words:
        raise InputError("the prompt is empty: give at least one word, e.g. --prompt \"if else endif\".")
    encoded = model.encode(prompt)
    limit = model.config.max_seq_len
    dropped = max(0, len(words) - limit)
    words, ids = words[dropped:], encoded.ids[dropped:]
    counts = {word: words.count(word) for word in words}
    tokens = [Token(position, word, int(i), word in model.vocabulary.index,
                    word if counts[word] == 1 else f"{word}#{position}")
              for position, (word, i) in enumerate(zip(words, ids))]
    return tokens, list(encoded.unknown), dropped


# ---------------------------------------------------------------------------
# Phase 1: input


def input_phase(model, tokens: list[Token], trace, unknown: list[str] | None = None, dropped: int = 0) -> InputPhase:
    tok, pos, out = trace["embed.tokens"][0], trace["embed.pos"][0], trace["embed.out"][0]  # [S, E] each
    pos_param = model.params["pos_encoding"][0]  # [T, E]
    shown = tokens[:2]

    def preview(rows, position, label, token_id):
        return RowPreview(position, label, token_id, _floats(rows[position][:PREVIEW_VALUES]))

    pairs = []
    for a in range(len(tokens)):
        for b in range(a + 1, len(tokens)):
            difference = float(np.max(np.abs(tok[a].astype(np.float64) - tok[b])))
            pairs.append(PairDifference(a, b, tokens[a].label, tokens[b].label, difference,
                                        tokens[a].id == tokens[b].id))
    different = [pair for pair in pairs if not pair.same_id]
    closest = min(different, key=lambda pair: pair.max_abs, default=None)
    pos_difference = None
    if pos_param.shape[0] > 1:
        pos_difference = float(np.max(np.abs(pos_param[0].astype(np.float64) - pos_param[1])))
    return InputPhase(
        tokens=list(tokens),
        unknown=list(unknown or [token.word for token in tokens if not token.known]),
        dropped=dropped,
        shapes={"embed.weight": list(model.params["embed.weight"].shape), "embed.tokens": list(trace["embed.tokens"].shape),
                "pos_encoding": list(model.params["pos_encoding"].shape), "embed.pos": list(trace["embed.pos"].shape),
                "embed.out": list(trace["embed.out"].shape)},
        token_rows=[preview(tok, t.position, t.label, t.id) for t in shown],
        pos_rows=[preview(pos_param, p, f"position {p}", p) for p in range(min(2, pos_param.shape[0]))],
        out_rows=[preview(out, t.position, t.label, t.id) for t in shown],
        pairs=pairs,
        rows_distinct=all(pair.max_abs > 0 for pair in different),
        closest_pair=closest,
        pos_difference=pos_difference,
        positions_differ=pos_difference is not None and pos_difference > 0,
        sum_error=float(np.max(np.abs(out.astype(np.float64) - (tok + pos)))),
    )


# ---------------------------------------------------------------------------
# Phase 2: attention


def attends(weights, tokens: list[Token]) -> list[Attends]:
    """For each query position i: argmax of weights[i, :i] (earlier, itself excluded) and of
    weights[i, :i + 1] (overall, itself included). Ties go to the earliest position."""
    weights = np.asarray(weights, dtype=np.float64)
    result = []
    for i, token in enumerate(tokens):
        earlier = None
        if i > 0:
            j = int(np.argmax(weights[i, :i]))
            earlier = Target(j, tokens[j].label, float(weights[i, j]))
        k = int(np.argmax(weights[i, :i + 1]))
        result.append(Attends(i, token.label, earlier, Target(k, tokens[k].label, float(weights[i, k]))))
    return result


def head_phase(layer: int, head: int, trace, tokens: list[Token]) -> HeadPhase:
    prefix = f"layers.{layer}.attention."
    raw = trace[prefix + "scores_raw"][0, head].astype(np.float64)  # [S, S]
    scaled = trace[prefix + "scores_scaled"][0, head].astype(np.float64)
    weights = trace[prefix + "weights"][0, head].astype(np.float64)
    seq_len = weights.shape[0]
    visible = np.tril(np.ones((seq_len, seq_len), dtype=bool))
    sums = weights.sum(axis=-1)
    return HeadPhase(
        layer, head, _floats(raw), _floats(scaled), _floats(weights),
        _range(raw), _range(scaled), _range(weights[visible]),
        float(weights[~visible].max()) if (~visible).any() else 0.0,
        _floats(sums), float(np.max(np.abs(sums - 1.0))), attends(weights, tokens),
    )


def attention_phase(model, tokens: list[Token], trace) -> list[LayerAttention]:
    config = model.config
    layers = []
    for layer in range(config.n_layers):
        prefix = f"layers.{layer}.attention."
        shapes = {name: list(trace[prefix + name].shape)
                  for name in ("q", "k", "v", "q_heads", "k_heads", "v_heads", "scores_raw", "weights",
                               "context", "context_merged", "out")}
        mask = trace[prefix + "mask"]
        seq_len = mask.shape[0]
        expected = np.triu(np.ones((seq_len, seq_len)), k=1) * config.mask_value
        layers.append(LayerAttention(
            layer, shapes, _floats(mask), bool(np.array_equal(mask.astype(np.float64), expected)),
            [head_phase(layer, head, trace, tokens) for head in range(config.n_heads)],
        ))
    return layers


def attention_question(layers: list[LayerAttention], tokens: list[Token], query: str = "else",
                       key: str = "if") -> Question | None:
    """Does the first `query` word attend to the last `key` word before it? None when the
    prompt has no such pair. Per head: the weight, its rank among the earlier words, and the
    earlier word weighted most."""
    query_position = next((t.position for t in tokens if t.word == query), None)
    if query_position is None:
        return None
    key_position = next((t.position for t in reversed(tokens[:query_position]) if t.word == key), None)
    if key_position is None:
        return None
    answers = []
    for layer in layers:
        for head in layer.heads:
            row = np.asarray(head.weights[query_position][:query_position])
            weight = float(row[key_position])
            rank = 1 + int(np.sum(row > weight))
            answers.append(QuestionAnswer(layer.layer, head.head, weight, rank, head.attends[query_position].earlier,
                                          head.attends[query_position].overall))
    return Question(query, key, query_position, key_position, answers)


# ---------------------------------------------------------------------------
# Phase 3: feed-forward and norms


def norm_phase(model, layer: int, name: str, trace) -> NormPhase:
    input_name = {"norm1": "residual1", "norm2": "residual2"}[name]
    before = trace[f"layers.{layer}.{input_name}"]
    after = trace[f"layers.{layer}.{name}"]
    standardized = standardize(before, model.config.ln_eps)
    weight = model.params[f"layers.{layer}.{name}.weight"].astype(np.float64)
    bias = model.params[f"layers.{layer}.{name}.bias"].astype(np.float64)
    max_error = float(np.max(np.abs(standardized * weight + bias - after)))
    return NormPhase(layer, name, input_name, stats(before), stats(standardized), stats(after), max_error)


def feed_forward_phase(model, trace) -> list[LayerFeedForward]:
    layers = []
    for layer in range(model.config.n_layers):
        prefix = f"layers.{layer}."
        shapes = {name: list(trace[prefix + name].shape)
                  for name in ("norm1", "feed_forward.hidden_pre", "feed_forward.hidden", "feed_forward.out")}
        hidden = trace[prefix + "feed_forward.hidden"]
        layers.append(LayerFeedForward(
            layer, shapes, shapes["feed_forward.out"] == shapes["norm1"],
            float(np.mean(hidden == 0)),
            [norm_phase(model, layer, "norm1", trace), norm_phase(model, layer, "norm2", trace)],
        ))
    return layers


# ---------------------------------------------------------------------------
# Phase 4: output


def top_candidates(last_logits, vocab: list[str], k: int) -> list[Candidate]:
    """The k most likely next words, by probability (softmax in float64); ties by id."""
    last_logits = np.asarray(last_logits)
    probabilities = softmax64(last_logits)
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [Candidate(rank, int(i), vocab[int(i)], float(last_logits[i]), float(probabilities[i]))
            for rank, i in enumerate(order, 1)]


def output_phase(model, logits, top_k: int) -> OutputPhase:
    last = np.asarray(logits)[0, -1]  # [V]
    probabilities = softmax64(last)
    top = top_candidates(last, model.vocab, top_k)
    chosen = int(np.argmax(last))
    argmax = Candidate(1, chosen, model.vocab[chosen], float(last[chosen]), float(probabilities[chosen]))
    return OutputPhase(list(np.shape(logits)), int(np.shape(logits)[1]) - 1, float(probabilities.sum()), top, argmax)


# ---------------------------------------------------------------------------
# Phase 5: the loop, by hand


def loop_phase(model, tokens: list[Token], steps: int) -> LoopPhase:
    """Grow the prompt one word at a time: run the unpadded ids (the last max_seq_len),
    take the argmax of the last position, append it, repeat. numpy_ref.generate's
    "notebook" mode does the same; this one also keeps the runner-up."""
    if steps < 0:
        raise InputError(f"--steps must be 0 or more, got {steps}.")
    limit = model.config.max_seq_len
    ids = [token.id for token in tokens]
    shown = [token.word for token in tokens]  # the prompt as typed, then the chosen words
    result = []
    for step in range(1, steps + 1):
        context = np.array([ids[-limit:]], dtype=np.int64)  # [1, S]
        last = model(context)[0, -1]  # [V]
        first, second = (top_candidates(last, model.vocab, 2) + [None])[:2]
        chosen = int(np.argmax(last))
        result.append(LoopStep(step, shown[-limit:], list(context.shape), chosen, model.vocab[chosen],
                               float(softmax64(last)[chosen]), second))
        ids.append(chosen)
        shown.append(model.vocab[chosen])
    return LoopPhase([token.word for token in tokens], result, shown)


# ---------------------------------------------------------------------------
# All five


def inspect(model, prompt: str = DEFAULT_PROMPT, steps: int = 8, top_k: int = 5, checkpoint: str | None = None,
            question: tuple[str, str] = ("else", "if")) -> Inspection:
    """Run the five phases on `prompt` (one sequence, unpadded)."""
    if top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {top_k}.")
    if steps < 0:
        raise InputError(f"--steps must be 0 or more, got {steps}.")
    tokens, unknown, dropped = tokens_of(model, prompt)
    notes = []
    if unknown:
        notes.append(f"not in the vocabulary, read as id {model.config.pad_id} "
                     f"({model.vocab[model.config.pad_id]}): {', '.join(unknown)}")
    if dropped:
        notes.append(f"the prompt has {len(tokens) + dropped} words; the model sees only the last "
                     f"{model.config.max_seq_len} (max_seq_len), so the first {dropped} are left out")
    logits, trace = model.run_with_trace(np.array([[token.id for token in tokens]], dtype=np.int64))
    attention = attention_phase(model, tokens, trace)
    return Inspection(
        prompt=prompt,
        dtype=np.dtype(model.dtype).name,
        config=model.config.to_dict(),
        checkpoint=checkpoint,
        input=input_phase(model, tokens, trace, unknown, dropped),
        attention=attention,
        question=attention_question(attention, tokens, *question),
        feed_forward=feed_forward_phase(model, trace),
        output=output_phase(model, logits, min(top_k, model.config.vocab_size)),
        loop=loop_phase(model, tokens, steps),
        notes=notes,
    )
