"""The inspection (numpy_ref.phases.Inspection) as terminal text.

Heat maps are drawn with the shading characters " ░▒▓█" (weight 0 to 1) beside the number,
so the text reads without colour; with colour each cell's background is shaded instead
(ANSI 256 colours, or 24-bit where COLORTERM=truecolor). `use_color` decides: --color
always / never, or auto = stdout is a terminal and NO_COLOR is unset or empty (the NO_COLOR
convention).
"""

from __future__ import annotations

import os

SHADES = " ░▒▓█"
CHECK, CROSS = "✓", "✗"
MAX_LABEL = 10       # row labels are cut to this width
CELL = 7             # a heat-map cell with its number: "██ 0.88"
COMPACT_FROM = 11
NORM_LABEL = 38      # the label column of the norm statistics    # from this many words on, cells are two shading characters, no number

# A dark-to-bright ramp (viridis' anchors) for cell backgrounds, mapped to the xterm-256 cube.
RAMP = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
CUBE_LEVELS = [0, 95, 135, 175, 215, 255]


def use_color(choice: str = "auto", stream=None, environ=None) -> bool:
    environ = os.environ if environ is None else environ
    if choice == "always":
        return True
    if choice == "never":
        return False
    if environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def clean(text) -> str:
    """A word safe to print: control characters (an escape sequence in a vocabulary) as '?'."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def fit(text, width: int) -> str:
    text = clean(text)
    return text if len(text) <= width else text[:width - 1] + "…"


def shade(weight: float) -> str:
    """One of " ░▒▓█" for a weight in [0, 1] (0.125 steps round to the nearest of five levels)."""
    return SHADES[max(0, min(4, int(round(float(weight) * 4))))]


def _cube_index(value: float) -> int:
    return min(range(6), key=lambda i: abs(CUBE_LEVELS[i] - value))


def ramp_rgb(weight: float) -> tuple[int, int, int]:
    weight = max(0.0, min(1.0, float(weight)))
    position = weight * (len(RAMP) - 1)
    low = min(int(position), len(RAMP) - 2)
    t = position - low
    return tuple(round(a + (b - a) * t) for a, b in zip(RAMP[low], RAMP[low + 1]))


def ramp_code(weight: float) -> int:
    r, g, b = ramp_rgb(weight)
    return 16 + 36 * _cube_index(r) + 6 * _cube_index(g) + _cube_index(b)


def truecolor_terminal(environ=None) -> bool:
    """COLORTERM=truecolor (or 24bit) announces 24-bit colour; else the 256-colour palette is used."""
    environ = os.environ if environ is None else environ
    return environ.get("COLORTERM", "").lower() in ("truecolor", "24bit")


class Style:
    def __init__(self, color: bool, truecolor: bool = False):
        self.color = color
        self.truecolor = truecolor

    def _sgr(self, text: str, codes: str) -> str:
        return f"\x1b[{codes}m{text}\x1b[0m" if self.color else text

    def bold(self, text):
        return self._sgr(text, "1")

    def dim(self, text):
        return self._sgr(text, "2")

    def good(self, text):
        return self._sgr(text, "32")

    def bad(self, text):
        return self._sgr(text, "1;31")

    def check(self, ok: bool, text_ok: str = "", text_bad: str = "FAILED") -> str:
        return self.good(f"{CHECK} {text_ok}".rstrip()) if ok else self.bad(f"{CROSS} {text_bad}".rstrip())

    def heat(self, text: str, weight: float) -> str:
        if not self.color:
            return text
        r, g, b = ramp_rgb(weight)
        foreground = 16 if 0.299 * r + 0.587 * g + 0.114 * b > 140 else 231
        background = f"48;2;{r};{g};{b}" if self.truecolor else f"48;5;{ramp_code(weight)}"
        return self._sgr(text, f"{background};38;5;{foreground}")

    def bar(self, text: str) -> str:
        return self._sgr(text, "38;5;75")

    def hidden(self, text: str) -> str:
        return self._sgr(text, "48;5;238;38;5;250") if self.color else text


def fixed(value: float, digits: int = 4, sign: bool = False) -> str:
    """A fixed-point number without a minus sign on a value that rounds to 0."""
    text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    if float(text) == 0:
        text = ("+" if sign else "") + f"{0:.{digits}f}"
    return text


def sci(value) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.2e}"


def short(value: float) -> str:
    """-1e9 for the mask value, 0 for 0."""
    if value == 0:
        return "0"
    text = f"{value:.0e}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
    return text if float(text) == value else f"{value:g}"


def shape(values) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def vector(values, digits: int = 3) -> str:
    return "[" + ", ".join(f"{v:+.{digits}f}" for v in values) + ", …]"


def heading(style: Style, text: str) -> str:
    return "\n" + style.bold(text) + "\n" + style.dim("─" * min(len(text), 100))


# ---------------------------------------------------------------------------
# Phase 1


def render_input(phase, style: Style) -> list[str]:
    lines = [heading(style, "1. Input: words → ids → embedding rows + positional rows")]
    width = max([len(clean(t.word)) for t in phase.tokens] + [4])
    width = min(width, 24)
    lines.append(f"  {'pos':>3}  {'word':<{width}}  {'id':>5}  in vocabulary")
    for token in phase.tokens:
        known = "yes" if token.known else style.bad(f"NO → unknown, read as id {token.id} (the pad id)")
        lines.append(f"  {token.position:>3}  {fit(token.word, width):<{width}}  {token.id:>5}  {known}")
    if phase.unknown:
        lines.append("  " + style.bad(f"unknown word(s) flagged: {', '.join(clean(w) for w in phase.unknown)} "
                                      f"(the model sees the pad id there)"))
    if phase.dropped:
        lines.append(f"  the first {phase.dropped} word(s) were left out: the model sees at most max_seq_len words")
    s = phase.shapes
    lines.append(f"  embed.weight {shape(s['embed.weight'])} looked up by id → embed.tokens {shape(s['embed.tokens'])}")
    lines.append(f"  the first values of {'two embedding rows' if len(phase.token_rows) > 1 else 'the embedding row'}:")
    for row in phase.token_rows:
        lines.append(f"    {fit(row.label, MAX_LABEL):<{MAX_LABEL}} (id {row.id:>3})  {vector(row.values)}")
    if phase.closest_pair is not None:
        pair = phase.closest_pair
        different = sum(1 for p in phase.pairs if not p.same_id)
        lines.append(f"  rows of different words differ: the smallest max |row_a − row_b| over {different} pair(s) is "
                     f"{pair.max_abs:.4g} ({clean(pair.label_a)} vs {clean(pair.label_b)}) > 0  "
                     + style.check(phase.rows_distinct))
    else:
        lines.append("  (only one distinct word: no pair of rows to compare)")
    same = [p for p in phase.pairs if p.same_id]
    if same:
        lines.append(f"  {len(same)} pair(s) of positions hold the same id and so the same row "
                     f"(e.g. {clean(same[0].label_a)}, {clean(same[0].label_b)}: difference {same[0].max_abs:g})")
    lines.append(f"  pos_encoding {shape(s['pos_encoding'])}, its first S rows → embed.pos {shape(s['embed.pos'])}")
    for row in phase.pos_rows:
        lines.append(f"    {row.label:<{MAX_LABEL}}            {vector(row.values)}")
    if phase.pos_difference is None:
        lines.append("  (max_seq_len is 1: there is no positional row 1)")
    else:
        lines.append(f"  positional rows 0 and 1 differ: max |pos[0] − pos[1]| = {phase.pos_difference:.4g} > 0  "
                     + style.check(phase.positions_differ))
    lines.append(f"  embed.out = embed.tokens + embed.pos {shape(s['embed.out'])}: max |out − (tokens + pos)| = "
                 f"{phase.sum_error:g}  " + style.check(phase.sum_error == 0))
    for row in phase.out_rows:
        lines.append(f"    {fit(row.label, MAX_LABEL):<{MAX_LABEL}}            {vector(row.values)}")
    return lines


# ---------------------------------------------------------------------------
# Phase 2


def render_mask(layer, labels: list[str], style: Style) -> list[str]:
    seq_len = len(labels)
    cell = max(5, max(len(short(v)) for row in layer.mask for v in row) + 1)
    compact = seq_len >= COMPACT_FROM
    lines = [f"  causal mask {shape([seq_len, seq_len])}, ADDED to the scaled scores (row = query, column = key): "
             f"0 = may look, {short(min(min(r) for r in layer.mask)) if seq_len > 1 else '-1e9'} = the future, "
             f"hidden  " + style.check(layer.mask_ok, "triu(ones, 1) × mask_value")]
    if compact:
        lines.append(f"  {'':<{MAX_LABEL + 4}}" + "".join(f"{i % 100:>2} " for i in range(seq_len)))
    else:
        lines.append(f"  {'':<{MAX_LABEL}}  " + " ".join(f"{fit(label, cell):<{cell}}" for label in labels))
    for i, row in enumerate(layer.mask):
        cells = []
        for value in row:
            if compact:
                cells.append(style.hidden("██") if value != 0 else " ·")
            else:
                text = f"{short(value):<{cell}}"
                cells.append(style.hidden(text) if value != 0 else text)
        prefix = f"{i:>3} {fit(labels[i], MAX_LABEL):<{MAX_LABEL}}" if compact else f"{fit(labels[i], MAX_LABEL):<{MAX_LABEL}}"
        lines.append("  " + prefix + ("" if compact else "  ") + (" " if compact else " ").join(cells))
    if compact:
        lines.append(style.dim("  (· = 0, the word may look there; ██ = mask value added, hidden)"))
    return lines


def attends_text(attends) -> str:
    earlier = "no earlier word" if attends.earlier is None else \
        f"{clean(attends.label)} → {clean(attends.earlier.label)} ({attends.earlier.weight:.2f})"
    return f"{earlier}; overall {clean(attends.overall.label)} ({attends.overall.weight:.2f})"


def render_head(head, labels: list[str], style: Style) -> list[str]:
    seq_len = len(labels)
    compact = seq_len >= COMPACT_FROM
    lines = [style.bold(f"  layer {head.layer}, head {head.head}") +
             f"   scores_raw [{head.raw_range[0]:.3g}, {head.raw_range[1]:.3g}] (unbounded) → ÷√D → "
             f"[{head.scaled_range[0]:.3g}, {head.scaled_range[1]:.3g}] → + mask → softmax → "
             f"weights [{head.weights_range[0]:.3g}, {head.weights_range[1]:.3g}]"]
    sums_ok = head.row_sum_error < 1e-5
    lines.append(f"    row sums {', '.join(f'{v:.6f}' for v in head.row_sums[:8])}{', …' if seq_len > 8 else ''} "
                 f"(max |sum − 1| = {sci(head.row_sum_error)}) " + style.check(sums_ok) +
                 f"   above the diagonal: max {head.hidden_max:g} " + style.check(head.hidden_max == 0))
    if compact:
        lines.append(f"    {'':<{MAX_LABEL + 4}}" + "".join(f"{i % 100:>2} " for i in range(seq_len))
                     + "  earlier word weighted most; most overall (itself included)")
    else:
        lines.append(f"    {'':<{MAX_LABEL}}  " + " ".join(f"{fit(label, CELL):<{CELL}}" for label in labels)
                     + "   earlier word weighted most; most overall (itself included)")
    for i, row in enumerate(head.weights):
        cells = []
        for j, weight in enumerate(row):
            if j > i:
                cells.append(" · " if compact else f"{'   ·':<{CELL}}")
            else:
                # With colour the background carries the weight; without, the shading characters do.
                mark = "  " if style.color else shade(weight) * 2
                cells.append(style.heat(mark, weight) + " " if compact else style.heat(f"{mark} {weight:.2f}", weight))
        if compact:
            prefix = f"{i:>3} {fit(labels[i], MAX_LABEL):<{MAX_LABEL}}"
            lines.append("    " + prefix + "".join(cells) + "  " + attends_text(head.attends[i]))
        else:
            lines.append("    " + f"{fit(labels[i], MAX_LABEL):<{MAX_LABEL}}  " + " ".join(cells)
                         + "   " + attends_text(head.attends[i]))
    return lines


def question_lines(question, style: Style) -> list[str]:
    lines = [style.bold(f"  Does `{clean(question.query)}` look at `{clean(question.key)}`?") +
             f" (position {question.query_position} → {question.key_position}; earlier = positions before it, itself excluded)"]
    for answer in question.answers:
        query, key = clean(question.query), clean(question.key)
        head = f"layer {answer.layer} head {answer.head}: {query} → {key} ({answer.weight:.2f})"
        if answer.overall.position == question.key_position:
            verdict = style.good(f"yes: {key} is what {query} weights most, itself included")
        elif answer.rank == 1:
            who = "itself" if answer.overall.position == question.query_position else clean(answer.overall.label)
            which = "its only earlier word" if question.query_position == 1 else "the earlier word it weights most"
            verdict = f"{key} is {which}, but it weights {who} more ({answer.overall.weight:.2f})"
        else:
            verdict = (f"no: {key} ranks {answer.rank} among the earlier words; most: "
                       f"{clean(answer.top_earlier.label)} ({answer.top_earlier.weight:.2f}), overall "
                       f"{clean(answer.overall.label)} ({answer.overall.weight:.2f})")
        lines.append(f"    {head}: {verdict}")
    return lines


def render_attention(inspection, style: Style) -> list[str]:
    labels = [t.label for t in inspection.input.tokens]
    config = inspection.config
    lines = [heading(style, "2. Attention: per layer and head, scores → mask → softmax weights")]
    for layer in inspection.attention:
        s = layer.shapes
        lines.append(style.bold(f"  layer {layer.layer}") +
                     f": q, k, v {shape(s['q'])} → split into {config['n_heads']} heads → q_heads, k_heads, v_heads "
                     f"{shape(s['q_heads'])}; scores {shape(s['scores_raw'])}; context {shape(s['context'])} → "
                     f"merged {shape(s['context_merged'])} → out {shape(s['out'])}")
        if layer.layer == 0:
            lines += render_mask(layer, labels, style)
        else:
            lines.append(f"  the same causal mask  " + style.check(layer.mask_ok, "triu(ones, 1) × mask_value"))
        legend = ("background from dark (0) through green to yellow (1)" if style.color else
                  "shading ░ ≥ 0.125, ▒ ≥ 0.375, ▓ ≥ 0.625, █ ≥ 0.875")
        lines.append(style.dim(f"  weights: row = the word that looks (query), column = the word looked at (key); "
                               f"{legend}; · = hidden by the mask"))
        for head in layer.heads:
            lines += render_head(head, labels, style)
    if inspection.question is not None:
        lines.append("")
        lines += question_lines(inspection.question, style)
    return lines


# ---------------------------------------------------------------------------
# Phase 3


def render_norms(inspection, style: Style) -> list[str]:
    lines = [heading(style, "3. Feed-forward and norms: shapes; mean and std before and after each LayerNorm")]
    for layer in inspection.feed_forward:
        s = layer.shapes
        lines.append(style.bold(f"  layer {layer.layer}") +
                     f": norm1 {shape(s['norm1'])} → linear1 → {shape(s['feed_forward.hidden_pre'])} → ReLU "
                     f"({layer.relu_zero_fraction:.0%} set to 0) → linear2 → {shape(s['feed_forward.out'])}: keeps the "
                     f"shape " + style.check(layer.keeps_shape))
        header = f"    {'':<{NORM_LABEL}} {'mean':>9} {'std':>8}   {'per-position mean':<18}  per-position std"
        lines.append(style.dim(header))
        for norm in layer.norms:
            rows = [
                (f"{norm.input_name} (before {norm.name})", norm.before, ""),
                ("standardised (x − mean) / √(var + ε)", norm.standardized,
                 style.check(abs(norm.standardized.mean) < 1e-3 and abs(norm.standardized.std - 1) < 1e-2,
                             "about 0 and 1")),
                (f"{norm.name} (after × weight + bias)", norm.after,
                 style.dim(f"recomputed: max err {sci(norm.max_error)}")),
            ]
            for label, st, remark in rows:
                means = f"[{fixed(st.row_mean_range[0], 3, True)}, {fixed(st.row_mean_range[1], 3, True)}]"
                stds = f"[{fixed(st.row_std_range[0], 3)}, {fixed(st.row_std_range[1], 3)}]"
                lines.append(f"    {label:<{NORM_LABEL}} {fixed(st.mean, 4, True):>9} {fixed(st.std):>8}   {means:<18}  {stds:<16}  "
                             f"{remark}".rstrip())
    return lines


# ---------------------------------------------------------------------------
# Phase 4 and 5


def render_output(inspection, style: Style) -> list[str]:
    out = inspection.output
    last = inspection.input.tokens[-1]
    lines = [heading(style, "4. Output: logits → softmax of the last position → the next word")]
    lines.append(f"  logits {shape(out.logits_shape)}; position {out.position} ({clean(last.label)}) predicts the next "
                 f"word; its softmax sums to {out.probability_sum:.6f}")
    width = max([len(clean(c.word)) for c in out.top] + [4])
    width = min(width, 24)
    lines.append(style.dim(f"  {'rank':>4}  {'word':<{width}}  {'id':>5}  {'logit':>8}  probability"))
    for c in out.top:
        bar = ("█" * int(round(c.probability * 30))) or "▏"
        lines.append(f"  {c.rank:>4}  {fit(c.word, width):<{width}}  {c.id:>5}  {c.logit:>8.3f}  {c.probability:>9.4f}  "
                     + style.bar(bar))
    lines.append(f"  argmax → {style.bold(clean(out.argmax.word))} (id {out.argmax.id}, p = {out.argmax.probability:.4f})")
    return lines


def render_loop(inspection, style: Style) -> list[str]:
    loop = inspection.loop
    lines = [heading(style, f"5. The loop: the prompt grown one word at a time ({len(loop.steps)} steps; "
                            f"unpadded, argmax: the notebook's way)")]
    if not loop.steps:
        lines.append("  (--steps 0: no step)")
        return lines
    width = max(len(clean(s.word)) for s in loop.steps)
    width = min(max(width, 6), 24)
    lines.append(style.dim(f"  {'step':>4}  {'context':<8}  {'→ word':<{width + 2}}  {'p':>6}   runner-up       "
                           f"  the words the model saw (their end)"))
    for s in loop.steps:
        seen = " ".join(clean(w) for w in s.context[-8:])
        if len(s.context) > 8:
            seen = "… " + seen
        runner = "" if s.runner_up is None else f"{fit(s.runner_up.word, 10)} {s.runner_up.probability:.3f}"
        lines.append(f"  {s.step:>4}  {shape(s.context_shape):<8}  → {style.bold(fit(s.word, width)) + ' ' * (width - len(fit(s.word, width)))}"
                     f"  {s.probability:>6.3f}   {runner:<16}  {seen}")
    lines.append("  text: " + " ".join(clean(w) for w in loop.words))
    return lines


def render(inspection, color: bool = False, truecolor: bool | None = None) -> str:
    """The inspection as text; with colour, 24-bit backgrounds where the terminal says it has them."""
    style = Style(color, truecolor_terminal() if truecolor is None else truecolor)
    config = inspection.config
    lines = [style.bold("numpy-ref inspect") + f": the notebook's five phases on "
             f"\"{clean(inspection.prompt)}\", in NumPy ({inspection.dtype})"]
    if inspection.checkpoint:
        lines.append(f"checkpoint {clean(inspection.checkpoint)}: vocab {config['vocab_size']}, d_model {config['d_model']}, "
                     f"{config['n_heads']} heads (D = {config['d_model'] // config['n_heads']}), d_ff {config['d_ff']}, "
                     f"{config['n_layers']} layers, max_seq_len {config['max_seq_len']}")
    for note in inspection.notes:
        lines.append(style.bad("note: ") + clean(note))
    lines += render_input(inspection.input, style)
    lines += render_attention(inspection, style)
    lines += render_norms(inspection, style)
    lines += render_output(inspection, style)
    lines += render_loop(inspection, style)
    return "\n".join(lines) + "\n"
