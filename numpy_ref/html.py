"""Self-contained HTML pages: the inspection (numpy-ref inspect --html) and the parity report
(numpy-ref verify --html).

Pure Python string building (every text through html.escape), no network, no external
files, no script: one file that opens anywhere. It imports no torch, so the notebook can
show its pieces inline:

    from IPython.display import HTML
    from numpy_ref.html import heatmap, mask_table
    HTML(heatmap(weights, labels))        # weights [S, S]: row = query, column = key

Every heat-map cell carries its exact value in a `title` (shown on hover); the tables are
styled inline, so a fragment looks the same in a notebook as in the page.
"""

from __future__ import annotations

import html
from pathlib import Path

from .atomic import write_text_atomic
from .errors import InputError

# White to dark blue, for weights and shares in [0, 1].
BLUES = [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)]
REDS = [(255, 245, 240), (252, 187, 161), (251, 106, 74), (203, 24, 29), (103, 0, 13)]
AMBERS = [(255, 250, 235), (254, 217, 142), (254, 153, 41), (217, 95, 14), (153, 52, 4)]
HIDDEN_STYLE = ("background:repeating-linear-gradient(45deg,#e4e4e4 0 3px,#f4f4f4 3px 6px);"
                "color:#999")


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def ramp(value: float, anchors=BLUES) -> tuple[int, int, int]:
    value = max(0.0, min(1.0, float(value)))
    position = value * (len(anchors) - 1)
    low = min(int(position), len(anchors) - 2)
    t = position - low
    return tuple(round(a + (b - a) * t) for a, b in zip(anchors[low], anchors[low + 1]))


def cell_style(value: float, anchors=BLUES) -> str:
    r, g, b = ramp(value, anchors)
    text = "#fff" if 0.299 * r + 0.587 * g + 0.114 * b < 140 else "#111"
    return f"background:rgb({r},{g},{b});color:{text}"


def shape(values) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def check(ok: bool, text: str = "") -> str:
    mark = "✓" if ok else "✗"
    color = "#1a7f37" if ok else "#c62828"
    return (f'<span class="{"ok" if ok else "bad"}" style="color:{color};font-weight:700">'
            f'{mark}{(" " + esc(text)) if text else ""}</span>')


def fixed(value: float, digits: int = 4, sign: bool = False) -> str:
    """A fixed-point number without a minus sign on a value that rounds to 0."""
    text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    if float(text) == 0:
        text = ("+" if sign else "") + f"{0:.{digits}f}"
    return text


def short(value: float) -> str:
    if value == 0:
        return "0"
    text = f"{value:.0e}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
    return text if float(text) == value else f"{value:g}"


# ---------------------------------------------------------------------------
# Fragments (usable on their own, e.g. in a notebook)

TABLE_STYLE = "border-collapse:collapse;font:12px/1.2 ui-monospace,Menlo,Consolas,monospace;margin:4px 0"
TH_STYLE = "padding:2px 4px;font-weight:600;text-align:right;white-space:nowrap"
COL_STYLE = "padding:2px 2px;font-weight:600;vertical-align:bottom;text-align:left;white-space:nowrap"
CELL_STYLE = "width:44px;height:26px;text-align:center;border:1px solid #fff;padding:0"


def _column_header(label: str) -> str:
    inner = esc(label)
    if len(label) > 5:  # long words stand upright so that the cells stay square
        inner = f'<span style="writing-mode:vertical-rl;transform:rotate(180deg)">{inner}</span>'
    return f'<th style="{COL_STYLE}" title="{esc(label)}">{inner}</th>'


def heatmap(weights, row_labels, col_labels=None, caption: str = "", scores=None, causal: bool = True,
            value_name: str = "weight") -> str:
    """An HTML table of a [S, S] matrix in [0, 1] (attention weights: row = the query word,
    column = the key word), coloured by value, the words on both axes, the exact value (and
    the scaled score, when given) in each cell's title. With `causal`, cells above the
    diagonal are drawn hatched: hidden by the mask."""
    col_labels = list(row_labels if col_labels is None else col_labels)
    rows = [[float(v) for v in row] for row in weights]
    parts = [f'<table class="heatmap" style="{TABLE_STYLE}">']
    if caption:
        parts.append(f'<caption style="caption-side:top;text-align:left;font-weight:600;padding:2px 0;white-space:nowrap">{esc(caption)}</caption>')
    parts.append("<thead><tr>" + f'<th style="{TH_STYLE};font-weight:400;color:#666" title="rows: the query word (which '
                 f'looks); columns: the key word (looked at)">query ↓ key →</th>'
                 + "".join(_column_header(label) for label in col_labels) + "</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            where = f"{row_labels[i]} → {col_labels[j]}"
            if causal and j > i:
                title = f"{where}: hidden by the causal mask ({value_name} {value:.6g})"
                cells.append(f'<td class="cell masked" style="{CELL_STYLE};{HIDDEN_STYLE}" title="{esc(title)}">·</td>')
                continue
            title = f"{where}: {value_name} {value:.6f}"
            if scores is not None:
                title += f" (scaled score {float(scores[i][j]):.4f})"
            cells.append(f'<td class="cell" style="{CELL_STYLE};{cell_style(value)}" title="{esc(title)}">'
                         f"{value:.2f}</td>")
        parts.append(f'<tr><th style="{TH_STYLE}">{esc(row_labels[i])}</th>{"".join(cells)}</tr>')
    parts.append("</tbody></table>")
    return "".join(parts)


def mask_table(mask, labels, caption: str = "") -> str:
    """The causal mask as a triangle: 0 (may look) on and below the diagonal, the mask value
    (the future, hidden) above it."""
    parts = [f'<table class="mask" style="{TABLE_STYLE}">']
    if caption:
        parts.append(f'<caption style="caption-side:top;text-align:left;font-weight:600;padding:2px 0;white-space:nowrap">{esc(caption)}</caption>')
    parts.append("<thead><tr>" + f'<th style="{TH_STYLE}"></th>' + "".join(_column_header(l) for l in labels) + "</tr></thead><tbody>")
    for i, row in enumerate(mask):
        cells = []
        for j, value in enumerate(row):
            value = float(value)
            title = f"{labels[i]} → {labels[j]}: {value:g} added to the score"
            if value == 0:
                cells.append(f'<td class="cell" style="{CELL_STYLE};background:#e8f4e8;color:#255d25" title="{esc(title)}">0</td>')
            else:
                cells.append(f'<td class="cell" style="{CELL_STYLE};background:#3a3a3a;color:#fff" title="{esc(title)}">'
                             f"{esc(short(value))}</td>")
        parts.append(f'<tr><th style="{TH_STYLE}">{esc(labels[i])}</th>{"".join(cells)}</tr>')
    parts.append("</tbody></table>")
    return "".join(parts)


DATA_TABLE = "border-collapse:collapse;margin:6px 0;font-size:13px"
DATA_TH = "border:1px solid #d6dce3;padding:3px 8px;text-align:left;vertical-align:top;background:#f3f6f9"
DATA_TD = ("border:1px solid #d6dce3;padding:3px 8px;text-align:left;vertical-align:top;"
           "font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px")
ROW_BACKGROUND = {"unknown": "#fdecea", "fail": "#fdecea", "first": "#f8c9c4;font-weight:700", "std": "#f1f8f1"}


def table(header, rows, classes=None) -> str:
    """A plain table, styled inline (so that it looks the same in a notebook); cells are
    already HTML (escape text before). `classes` names a row's kind: unknown, fail, first, std."""
    parts = [f'<table class="data" style="{DATA_TABLE}"><thead><tr>'
             + "".join(f'<th style="{DATA_TH}">{h}</th>' for h in header) + "</tr></thead><tbody>"]
    for index, row in enumerate(rows):
        kind = classes[index] if classes else ""
        cls = f' class="{kind}"' if kind else ""
        style = DATA_TD + (f";background:{ROW_BACKGROUND[kind]}" if kind in ROW_BACKGROUND else "")
        parts.append(f"<tr{cls}>" + "".join(f'<td style="{style}">{cell}</td>' for cell in row) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def vector(values) -> str:
    return esc("[" + ", ".join(f"{v:+.3f}" for v in values) + ", …]")


def norms_table(layer) -> str:
    """One layer's LayerNorm statistics (numpy_ref.phases.LayerFeedForward)."""
    rows, classes = [], []
    for norm in layer.norms:
        standard_ok = abs(norm.standardized.mean) < 1e-3 and abs(norm.standardized.std - 1) < 1e-2
        for label, st, remark, cls in (
            (f"{norm.input_name} (before {norm.name})", norm.before, "", ""),
            ("standardised: (x − mean) / √(var + ε)", norm.standardized, check(standard_ok, "about 0 and 1"), "std"),
            (f"{norm.name} (after × weight + bias)", norm.after, f"recomputed: max err {norm.max_error:.1e}", ""),
        ):
            rows.append([esc(label), fixed(st.mean, sign=True), fixed(st.std),
                         f"[{fixed(st.row_mean_range[0], sign=True)}, {fixed(st.row_mean_range[1], sign=True)}]",
                         f"[{fixed(st.row_std_range[0])}, {fixed(st.row_std_range[1])}]", remark])
            classes.append(cls)
    return table(["tensor", "mean", "std", "per-position mean (range)", "per-position std (range)", "check"], rows, classes)


# ---------------------------------------------------------------------------
# Pages

PAGE_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#1b1b1b;background:#fff}
h1{font-size:22px;margin:0 0 6px}
h2{font-size:18px;margin:28px 0 8px;padding-top:10px;border-top:2px solid #dde3ea}
h3{font-size:15px;margin:16px 0 6px}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.meta{color:#555}
.ok{color:#1a7f37;font-weight:600}
.bad{color:#c62828;font-weight:700}
.note{background:#fff4e5;border-left:4px solid #f59e0b;padding:6px 10px;margin:6px 0}
.alert{background:#fdecea;border-left:4px solid #c62828;padding:8px 12px;margin:8px 0}
.heads{display:grid;grid-template-columns:repeat(auto-fill,minmax(310px,1fr));gap:16px;align-items:start}
.head{border:1px solid #e1e6ec;border-radius:6px;padding:8px 10px;background:#fcfdfe;overflow-x:auto}
.head ul{margin:4px 0 0;padding-left:18px;font-size:12.5px}
.head .stats{font-size:12px;color:#333;margin:4px 0}
.bar{display:inline-block;height:11px;background:#2171b5;vertical-align:middle}
.legend{display:inline-block;width:160px;height:12px;vertical-align:middle;border:1px solid #ccc;
background:linear-gradient(90deg,rgb(247,251,255),rgb(198,219,239),rgb(107,174,214),rgb(33,113,181),rgb(8,48,107))}
table.hist{border-collapse:collapse;font:11.5px ui-monospace,Menlo,Consolas,monospace;margin:6px 0}
table.hist th,table.hist td{border:1px solid #e3e7ec;padding:2px 4px;text-align:right;white-space:nowrap}
table.hist th{background:#f3f6f9;font-weight:600}
table.hist th.bin{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left;padding:4px 2px}
table.hist td.tolerance{border-left:3px solid #c62828}
table.hist td:nth-child(-n+2),table.hist th:nth-child(-n+2){text-align:left}
table.hist td:nth-child(n+4){min-width:40px}
"""


def page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{esc(title)}</title>\n"
            f"<style>{PAGE_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _head_card(head, labels) -> str:
    items = []
    for a in head.attends:
        earlier = "no earlier word" if a.earlier is None else \
            f"<b>{esc(a.label)} → {esc(a.earlier.label)}</b> ({a.earlier.weight:.2f})"
        items.append(f"<li>{earlier}; overall {esc(a.overall.label)} ({a.overall.weight:.2f})</li>")
    sums_ok = head.row_sum_error < 1e-5
    stats = (f'<div class="stats">scores_raw [{head.raw_range[0]:.3g}, {head.raw_range[1]:.3g}] (unbounded) → ÷√D → '
             f'[{head.scaled_range[0]:.3g}, {head.scaled_range[1]:.3g}]<br>weights [{head.weights_range[0]:.3g}, '
             f'{head.weights_range[1]:.3g}]<br><span title="{esc(", ".join(f"{v:.9f}" for v in head.row_sums))}">row sums all 1: '
             f'max |sum − 1| = {head.row_sum_error:.1e}</span> {check(sums_ok)}'
             f'<br>above the diagonal: max {head.hidden_max:g} {check(head.hidden_max == 0)}</div>')
    return (f'<div class="head">' + heatmap(head.weights, labels, caption=f"layer {head.layer}, head {head.head}",
                                            scores=head.scores_scaled)
            + stats + f'<div class="stats">earlier word weighted most (itself excluded); most overall:</div><ul>'
            + "".join(items) + "</ul></div>")


def _question_html(question) -> str:
    rows = []
    for answer in question.answers:
        if answer.overall.position == question.key_position:
            verdict = f'<span class="ok">yes</span>: {esc(question.key)} is what {esc(question.query)} weights most'
        elif answer.rank == 1:
            who = "itself" if answer.overall.position == question.query_position else esc(answer.overall.label)
            which = "its only earlier word" if question.query_position == 1 else "the earlier word it weights most"
            verdict = f"{esc(question.key)} is {which}, but it weights {who} more ({answer.overall.weight:.2f})"
        else:
            verdict = (f"no: rank {answer.rank} among the earlier words; most {esc(answer.top_earlier.label)} "
                       f"({answer.top_earlier.weight:.2f})")
        rows.append([f"layer {answer.layer}, head {answer.head}",
                     f"{esc(question.query)} → {esc(question.key)} <b>{answer.weight:.3f}</b>",
                     f'<span class="bar" style="width:{answer.weight * 120:.1f}px"></span>', verdict])
    return (f"<h3>Does <code>{esc(question.query)}</code> look at <code>{esc(question.key)}</code>?</h3>"
            f"<p>The weight of position {question.query_position} ({esc(question.query)}) on position "
            f"{question.key_position} ({esc(question.key)}), per head. Earlier = the positions before it, itself "
            f"excluded.</p>" + table(["head", "weight", "", "answer"], rows))


def inspection_page(inspection) -> str:
    """The whole inspection (numpy_ref.phases.Inspection) as one self-contained page."""
    ins, config = inspection, inspection.config
    labels = [t.label for t in ins.input.tokens]
    body = [f"<h1>numpy-ref inspect: <code>{esc(ins.prompt)}</code></h1>"]
    meta = f"NumPy reference, {esc(ins.dtype)}; "
    if ins.checkpoint:
        meta += f"checkpoint <code>{esc(ins.checkpoint)}</code>: "
    meta += (f"vocab {config['vocab_size']}, d_model {config['d_model']}, {config['n_heads']} heads "
             f"(D = {config['d_model'] // config['n_heads']}), d_ff {config['d_ff']}, {config['n_layers']} layers, "
             f"max_seq_len {config['max_seq_len']}. One sequence, unpadded, the notebook's sliced positions.")
    body.append(f'<p class="meta">{meta}</p>')
    body += [f'<div class="note">{esc(note)}</div>' for note in ins.notes]

    # 1. Input
    phase = ins.input
    body.append('<h2 id="input">1. Input: words → ids → embedding rows + positional rows</h2>')
    rows = [[str(t.position), esc(t.word), str(t.id),
             "yes" if t.known else f'<span class="bad">no: unknown, read as id {t.id} (the pad id)</span>']
            for t in phase.tokens]
    body.append(table(["position", "word", "id", "in the vocabulary"], rows,
                      ["" if t.known else "unknown" for t in phase.tokens]))
    s = phase.shapes
    body.append(f"<p><code>embed.weight</code> {shape(s['embed.weight'])} looked up by id → <code>embed.tokens</code> "
                f"{shape(s['embed.tokens'])}; <code>pos_encoding</code> {shape(s['pos_encoding'])}, its first S rows → "
                f"<code>embed.pos</code> {shape(s['embed.pos'])}; their sum <code>embed.out</code> {shape(s['embed.out'])}.</p>")
    preview_rows = [[f"embedding row of {esc(r.label)} (id {r.id})", vector(r.values)] for r in phase.token_rows]
    preview_rows += [[f"positional row {r.id}", vector(r.values)] for r in phase.pos_rows]
    preview_rows += [[f"embed.out at {esc(r.label)} (position {r.position})", vector(r.values)] for r in phase.out_rows]
    body.append(table(["row", "first values"], preview_rows))
    checks = []
    if phase.closest_pair is not None:
        pair = phase.closest_pair
        checks.append(f"rows of different words differ: smallest max |row<sub>a</sub> − row<sub>b</sub>| = "
                      f"{pair.max_abs:.4g} ({esc(pair.label_a)} vs {esc(pair.label_b)}) &gt; 0 {check(phase.rows_distinct)}")
    if phase.pos_difference is not None:
        checks.append(f"positional rows 0 and 1 differ: max |pos[0] − pos[1]| = {phase.pos_difference:.4g} &gt; 0 "
                      f"{check(phase.positions_differ)}")
    checks.append(f"embed.out = embed.tokens + embed.pos: max |out − (tokens + pos)| = {phase.sum_error:g} "
                  f"{check(phase.sum_error == 0)}")
    body.append("<ul>" + "".join(f"<li>{c}</li>" for c in checks) + "</ul>")
    if len(phase.tokens) > 1:
        n = len(phase.tokens)
        matrix = [["" for _ in range(n)] for _ in range(n)]
        for p in phase.pairs:
            matrix[p.a][p.b] = matrix[p.b][p.a] = f"{p.max_abs:.3g}"
        cells = [[esc(phase.tokens[i].label)] + [matrix[i][j] if i != j else "—" for j in range(n)] for i in range(n)]
        body.append("<h3>max |row<sub>i</sub> − row<sub>j</sub>| of the embedding rows, every pair</h3>"
                    + table([""] + [esc(l) for l in labels], cells))

    # 2. Attention
    body.append('<h2 id="attention">2. Attention: scores → mask → softmax weights, per layer and head</h2>')
    body.append('<p>Rows: the word that looks (query); columns: the word looked at (key). Colour: weight '
                '0 <span class="legend"></span> 1; hatched: hidden by the causal mask. Hover a cell for its exact '
                'weight and scaled score.</p>')
    for layer in ins.attention:
        sh = layer.shapes
        body.append(f'<h3 id="attention-layer-{layer.layer}">Layer {layer.layer}</h3>'
                    f"<p>q, k, v {shape(sh['q'])} → split into {config['n_heads']} heads → "
                    f"q_heads, k_heads, v_heads {shape(sh['q_heads'])}; scores {shape(sh['scores_raw'])}; context "
                    f"{shape(sh['context'])} → merged {shape(sh['context_merged'])} → out {shape(sh['out'])}.</p>")
        if layer.layer == 0:
            body.append(mask_table(layer.mask, labels, caption=f"causal mask {shape([len(labels)] * 2)}, added to the "
                                                                f"scaled scores") +
                        f"<p>{check(layer.mask_ok, 'equals triu(ones(S, S), 1) × mask_value')}</p>")
        else:
            body.append(f"<p>The same causal mask: {check(layer.mask_ok, 'equals triu(ones(S, S), 1) × mask_value')}</p>")
        body.append('<div class="heads">' + "".join(_head_card(head, labels) for head in layer.heads) + "</div>")
    if ins.question is not None:
        body.append(_question_html(ins.question))

    # 3. Feed-forward and norms
    body.append('<h2 id="norms">3. Feed-forward and norms</h2>')
    for layer in ins.feed_forward:
        sh = layer.shapes
        body.append(f"<h3>Layer {layer.layer}</h3><p>norm1 {shape(sh['norm1'])} → linear1 → "
                    f"{shape(sh['feed_forward.hidden_pre'])} → ReLU ({layer.relu_zero_fraction:.0%} set to 0) → linear2 → "
                    f"{shape(sh['feed_forward.out'])}: keeps the shape {check(layer.keeps_shape)}</p>")
        body.append(norms_table(layer))

    # 4. Output
    out = ins.output
    body.append('<h2 id="output">4. Output: logits → softmax of the last position → the next word</h2>')
    body.append(f"<p>logits {shape(out.logits_shape)}; position {out.position} ({esc(labels[-1])}) predicts the next "
                f"word; its softmax sums to {out.probability_sum:.6f}.</p>")
    rows = [[str(c.rank), esc(c.word), str(c.id), f"{c.logit:.4f}", f"{c.probability:.4f}",
             f'<span class="bar" style="width:{c.probability * 300:.1f}px" title="{c.probability:.6f}"></span>']
            for c in out.top]
    body.append(table(["rank", "word", "id", "logit", "probability", ""], rows))
    body.append(f"<p>argmax → <b>{esc(out.argmax.word)}</b> (id {out.argmax.id}, p = {out.argmax.probability:.4f})</p>")

    # 5. The loop
    loop = ins.loop
    body.append(f'<h2 id="loop">5. The loop: the prompt grown one word at a time</h2><p>'
                f"{len(loop.steps)} step(s), each a run "
                f"of the unpadded context and the argmax of its last position (the notebook's way).</p>")
    rows = []
    for st in loop.steps:
        runner = "" if st.runner_up is None else f"{esc(st.runner_up.word)} ({st.runner_up.probability:.3f})"
        generated = min(st.step - 1, len(st.context))  # the context's last words were chosen by earlier steps
        context = [esc(w) for w in st.context[:len(st.context) - generated]] + \
                  [f"<b>{esc(w)}</b>" for w in st.context[len(st.context) - generated:]]
        rows.append([str(st.step), " ".join(context), shape(st.context_shape), f"<b>{esc(st.word)}</b>",
                     f"{st.probability:.4f}", runner])
    body.append(table(["step", "context the model saw (bold: chosen by earlier steps)", "shape", "chosen word", "probability",
                       "runner-up"], rows))
    body.append(f"<p>text: <code>{esc(' '.join(loop.words))}</code></p>")
    return page(f"numpy-ref inspect: {ins.prompt}", "\n".join(body))


# ---------------------------------------------------------------------------
# The parity report (verify --html)


def _number(value) -> str:
    return "-" if value is None else f"{value:.2e}"


def _tolerance_bin(tol: float, labels: list[str]) -> int:
    """The index of the histogram bin that holds the tolerance (elements beyond it fail)."""
    from .parity import HISTOGRAM_EDGES

    if tol == 0:
        return 1
    index = 1 + sum(1 for edge in HISTOGRAM_EDGES if edge <= tol)
    return min(index, len(labels) - 1)


def _histogram_table(report) -> str:
    from .parity import HISTOGRAM_EDGES, histogram_labels

    labels = histogram_labels()
    header = ("<tr><th>intermediate</th><th>vs</th><th>elements</th>"
              + "".join(f'<th class="bin" title="error relative to the tensor\'s scale: {esc(label)}">{esc(label)}</th>'
                        for label in labels) + "</tr>")
    rows = []
    for row in report.rows:
        if row.histogram is None:
            rows.append(f"<tr><td>{esc(row.name)}</td><td>{esc(row.against)}</td><td colspan=\"{len(labels) + 1}\" "
                        f"style=\"text-align:left\">no values compared{(': ' + esc(row.note)) if row.note else ''}</td></tr>")
            continue
        total = sum(row.histogram.values())
        boundary = _tolerance_bin(row.tol, labels)
        cells = []
        for index, label in enumerate(labels):
            count = row.histogram.get(label, 0)
            share = count / total if total else 0.0
            lower = 0.0 if index <= 1 else HISTOGRAM_EDGES[index - 2]
            upper = HISTOGRAM_EDGES[index - 1] if 1 <= index <= len(HISTOGRAM_EDGES) else float("inf")
            if index == 0 or upper <= row.tol:
                anchors = [(255, 255, 255)] + BLUES[1:]
            elif lower >= row.tol:
                anchors = [(255, 255, 255)] + REDS[1:]
            else:
                anchors = [(255, 255, 255)] + AMBERS[1:]
            style = cell_style(0.15 + 0.85 * share, anchors) if count else "color:#bbb"
            title = (f"{row.name} vs {row.against}: {count} of {total} elements ({share:.1%}) with "
                     f"|numpy − {row.against}| / scale in {label} (tolerance {row.tol:.1e})")
            cls = ' class="tolerance"' if index == boundary else ""
            cells.append(f'<td{cls} style="{style}" title="{esc(title)}">{count}</td>')
        rows.append(f"<tr><td>{esc(row.name)}</td><td>{esc(row.against)}</td><td>{total}</td>{''.join(cells)}</tr>")
    return f'<table class="hist"><thead>{header}</thead><tbody>{"".join(rows)}</tbody></table>'


def parity_report_page(reports, checkpoint_path) -> str:
    """The parity reports (numpy_ref.parity.ParityReport, one per dtype) as one page: the
    table, the first mismatch, and per intermediate a histogram of the element-wise error
    (relative to the tensor's scale, by decade), when the reports hold histograms."""
    from . import parity

    def base_tolerance(report) -> float:  # the policy's bound before any widening by noise
        return parity.POLICIES[report.policy][report.dtype]

    ok = all(report.ok for report in reports)
    body = [f"<h1>numpy-ref verify: <code>{esc(checkpoint_path)}</code></h1>",
            f'<p class="meta">The NumPy reference against the PyTorch model (<code>torch</code>, every intermediate) '
            f'and PyTorch\'s stock TransformerEncoderLayer stack (<code>torch_stock</code>: each block\'s output and the '
            f'logits). Relative error = max |numpy − other| / max |other| (the tensor\'s scale).</p>',
            f"<p>overall: {check(ok, 'OK, all within tolerance' if ok else 'MISMATCH')}</p>"]
    for report in reports:
        first = report.first_mismatch
        failed = sum(1 for row in report.rows if not row.ok)
        what = report.dtype if report.policy == "forward" else f"{report.dtype}, {report.policy}s"
        body.append(f"<h2>{esc(what)}: " + (check(True, f"OK, all {len(report.rows)} comparisons within tolerance")
                    if report.ok else check(False, f"MISMATCH, {failed} of {len(report.rows)} comparisons failed")) + "</h2>")
        body.append("<p>inputs: " + "; ".join(f"{esc(case['name'])} {shape(case['shape'])}" for case in report.cases) + "</p>")
        if first is not None:
            reason = first.note or f"relative error {_number(first.max_rel)} > tolerance {_number(first.tol)}"
            body.append(f'<div class="alert first-mismatch"><b>first mismatch: {esc(first.name)}</b> (vs '
                        f'{esc(first.against)}): {esc(reason)}. Look here first: every later intermediate inherits '
                        f'its error.</div>')
        rows, classes = [], []
        for row in report.rows:
            widened = row.tol > base_tolerance(report)
            rows.append([esc(row.name), esc(row.against), shape(row.shape or []), _number(row.max_abs),
                         _number(row.max_rel), _number(row.tol) + ("*" if widened else ""),
                         check(row.ok, "OK" if row.ok else "MISMATCH") + (f" ({esc(row.note)})" if row.note else "")])
            classes.append("first" if row is first else ("" if row.ok else "fail"))
        body.append(table(["intermediate", "vs", "shape", "max abs err", "rel err", "tolerance", "result"], rows, classes))
        if any(row.tol > base_tolerance(report) for row in report.rows):
            body.append(f"<p>* widened to {parity.NOISE_FACTOR:g} × the expected side's own float32 rounding error (measured "
                        f"against float64): an ill-conditioned tensor.</p>")
        if any(row.histogram is not None for row in report.rows):
            body.append(f"<h3>Error histograms ({esc(what)})</h3><p>Per intermediate, over every element of "
                        f"every input: how many elements have |numpy − other| / scale in each decade. Blue: within the "
                        f"tolerance; amber: the decade that holds the tolerance; red: beyond it. The red line marks "
                        f"the tolerance's decade. Hover a cell for the count.</p>" + _histogram_table(report))
    return page(f"numpy-ref verify: {checkpoint_path}", "\n".join(body))


# ---------------------------------------------------------------------------
# Writing


def check_writable(path) -> None:
    """Raise InputError unless `path` can be written (its folder exists; not a folder itself)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--html {path}: is a folder; give a file name such as {path / 'report.html'}.")
    if not path.parent.is_dir():
        raise InputError(f"--html {path}: the folder {path.parent} does not exist.")


def write_page(path, text: str) -> None:
    """Write the page atomically (numpy_ref.atomic): complete, or not at all."""
    check_writable(path)
    try:
        write_text_atomic(path, text)
    except OSError as error:
        raise InputError(f"--html {path}: cannot write the page ({error.strerror or error}).") from None
