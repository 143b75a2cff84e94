"""Write notebooks/walkthrough.ipynb (with nbformat; no outputs, execution counts None).

The notebook is generated from this file so that it stays reviewable as code:

    .venv/bin/python notebooks/build_walkthrough.py      # rewrites walkthrough.ipynb

tests/test_notebook.py checks that the committed notebook is exactly what this writes, and
runs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "walkthrough.ipynb"

CELLS = [
    ("md", """\
# Inside the RPG decoder, phase by phase

This notebook walks the small decoder-only transformer (SPEC: 2 blocks, d_model 64, 4 heads of 16,
d_ff 256, post-norm) through the five inspection phases of the original notebook, on the prompt
`if else endif eval callp`:

1. **Input**: words → ids → embedding rows, plus positional rows;
2. **Attention**: q, k, v; raw scores versus softmax weights; the causal mask; a heat map per head;
   does `else` look at `if`?
3. **Feed-forward and norms**: the FFN keeps the shape; mean and standard deviation around each LayerNorm;
4. **Output**: logits, the softmax of the last position, the next word;
5. **The loop**: grow the prompt one word at a time, by hand.

Everything runs on `numpy_ref`, the pure-NumPy reference (no PyTorch), calling its step functions in
`numpy_ref.forward` directly, so each number is computed here in front of you; after each phase the
result is checked against the model's own trace (`model.run_with_trace`).

**The checkpoint.** The next cell loads the shipped trained checkpoint `data/rpg_model.safetensors`.
If that file is absent it writes a checkpoint of *seeded random weights* instead and says so: then
every step still runs and every check still holds, but the attention patterns and the predicted
words mean nothing."""),
    ("code", """\
import sys
import tempfile
from pathlib import Path

import numpy as np
from IPython.display import HTML, display

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "numpy_ref").is_dir())
sys.path.insert(0, str(ROOT))

import numpy_ref
from numpy_ref import forward as F            # the model's steps, one small function each
from numpy_ref import html as H               # heat maps and tables as HTML
from numpy_ref import phases                  # the same checks, computed for numpy-ref inspect

CHECKPOINT = ROOT / "data" / "rpg_model.safetensors"
if CHECKPOINT.exists():
    print(f"using the shipped checkpoint {CHECKPOINT.relative_to(ROOT)}")
else:
    from numpy_ref.checkpoint import save_checkpoint
    from numpy_ref.config import ModelConfig
    from numpy_ref.random_init import random_params, random_vocab

    random_config = ModelConfig(vocab_size=64)
    CHECKPOINT = Path(tempfile.mkdtemp()) / "random_model.safetensors"
    save_checkpoint(CHECKPOINT, random_params(random_config, seed=0), random_config, random_vocab(64))
    print("NOTE: data/rpg_model.safetensors is not there, so this notebook runs on SEEDED RANDOM weights "
          f"(seed 0) written to {CHECKPOINT}: the steps and checks are real, the patterns mean nothing.")

model = numpy_ref.load(CHECKPOINT, dtype="float32")
config, params = model.config, model.params
E, H_, D = config.d_model, config.n_heads, config.head_dim
print(config)"""),
    ("md", """\
## 1. Input: words → ids → embedding + position

The prompt is split on white space; each word's id is its position in the vocabulary. A word that is
not in the vocabulary becomes id 0, the same id as `[PAD]` — the original did that silently, so we flag
it. The embedding is a plain lookup of one row of `embed.weight` [V, E] per id; the positional
parameter [1, T, E] contributes its first S rows (the notebook's slice) and is *added*."""),
    ("code", """\
PROMPT = "if else endif eval callp"
words = PROMPT.split()
encoded = model.encode(PROMPT)
for position, (word, token_id) in enumerate(zip(words, encoded.ids)):
    flag = "   <- NOT in the vocabulary: read as id 0 ([PAD])" if word not in model.vocabulary.index else ""
    print(f"position {position}: {word:8} id {token_id}{flag}")
ids = np.array([encoded.ids])                      # [1, S]
S = ids.shape[1]

tokens = F.embed_tokens(params["embed.weight"], ids)   # [1, S, E]
pos = F.positions(params["pos_encoding"], S)           # [1, S, E]
x = tokens + pos                                       # [1, S, E]
print("embedding", list(tokens.shape), " positions", list(pos.shape), " embedding + position", list(x.shape))
print("first values of two rows:")
for i in range(2):
    print(f"  {words[i]:6} {np.round(tokens[0, i, :6], 3)}")"""),
    ("code", """\
# Distinct rows per word: the largest absolute difference between every two rows (0 only for the same id).
rows = tokens[0].astype(np.float64)
differences = np.abs(rows[:, None, :] - rows[None, :, :]).max(axis=-1)   # [S, S]
different_ids = ids[0][:, None] != ids[0][None, :]
print("max |row_i - row_j| (rows: i, columns: j)")
print(np.round(differences, 3))
print("every pair of different words has different rows:", bool(np.all(differences[different_ids] > 0)))

pos_difference = np.abs(params["pos_encoding"][0, 0] - params["pos_encoding"][0, 1]).max()
print(f"positional rows 0 and 1 differ: max |pos[0] - pos[1]| = {pos_difference:.4f} > 0:", bool(pos_difference > 0))

logits_model, trace = model.run_with_trace(ids)     # the model's own record of every step
print("the same as the model's embed.out:", np.array_equal(x, trace["embed.out"]))"""),
    ("md", """\
## 2. Attention: scores, the causal mask, softmax weights

Block 0 projects x three times (q, k, v: each [1, S, E]), then gives each of the H heads its own D
columns: reshape to [1, S, H, D] and transpose to [1, H, S, D] (`split_heads`). The raw scores
q @ kᵀ are unbounded; divided by √D they are the scaled scores. The causal mask adds -1e9 above the
diagonal (word i may look at positions 0..i only), and the softmax over each row turns the scores into
weights in [0, 1] that sum to 1, with exact zeros above the diagonal."""),
    ("code", """\
p = F.block_params(params, 0)                          # block 0's parameters by their names inside the block
q = F.linear(x, p["attention.q.weight"], p["attention.q.bias"])   # [1, S, E]
k = F.linear(x, p["attention.k.weight"], p["attention.k.bias"])
v = F.linear(x, p["attention.v.weight"], p["attention.v.bias"])
q_heads, k_heads, v_heads = (F.split_heads(t, H_) for t in (q, k, v))   # [1, H, S, D] each
print("q", list(q.shape), "-> q_heads", list(q_heads.shape), " k_heads", list(k_heads.shape),
      " v_heads", list(v_heads.shape))

scores_raw = F.attention_scores(q_heads, k_heads)      # [1, H, S, S]
scores_scaled = F.scale_scores(scores_raw, D)
mask = F.causal_mask(S, config.mask_value, x.dtype)    # [S, S]
weights = F.softmax(F.apply_mask(scores_scaled, mask)) # [1, H, S, S]
print(f"raw scores    range [{scores_raw.min():8.3f}, {scores_raw.max():8.3f}]  (unbounded)")
print(f"scaled / √{D}  range [{scores_scaled.min():8.3f}, {scores_scaled.max():8.3f}]")
row_sums = weights.sum(axis=-1)                        # [1, H, S]
print(f"weights       range [{weights.min():8.3f}, {weights.max():8.3f}]  every row sums to 1: "
      f"{bool(np.allclose(row_sums, 1, atol=1e-6))} (max |sum - 1| = {np.abs(row_sums - 1).max():.1e})")
above_diagonal = np.triu(np.ones((S, S), dtype=bool), k=1)
print("above the diagonal the weights are exactly 0:", bool(np.all(weights[:, :, above_diagonal] == 0)))
print("the same as the model's trace:", np.array_equal(weights, trace["layers.0.attention.weights"]))
display(HTML(H.mask_table(mask, words, caption=f"the causal mask [{S}, {S}], added to the scaled scores")))"""),
    ("code", """\
# One heat map per head (rows: the word that looks; columns: the word looked at). Hover a cell for its value.
def heat_maps(layer_weights, layer_scores, layer):
    cards = [H.heatmap(layer_weights[0, h], words, caption=f"layer {layer}, head {h}", scores=layer_scores[0, h])
             for h in range(H_)]
    return HTML('<div style="display:flex;flex-wrap:wrap;gap:24px">' + "".join(cards) + "</div>")

display(heat_maps(weights, scores_scaled, 0))
display(heat_maps(trace["layers.1.attention.weights"], trace["layers.1.attention.scores_scaled"], 1))"""),
    ("code", """\
# Does `else` look at `if`? For each head: else's weight on if, the EARLIER word (before it, itself
# excluded) it weights most, and what it weights most overall (itself included).
query, key = words.index("else"), words.index("if")
for layer in range(config.n_layers):
    layer_weights = trace[f"layers.{layer}.attention.weights"][0]
    for h in range(H_):
        row = layer_weights[h, query]
        earlier, overall = int(np.argmax(row[:query])), int(np.argmax(row[:query + 1]))
        print(f"layer {layer} head {h}: else → if ({row[key]:.2f}); earlier word weighted most: "
              f"{words[earlier]} ({row[earlier]:.2f}); overall: {words[overall]} ({row[overall]:.2f})")"""),
    ("md", """\
## 3. Feed-forward and norms

The heads' contexts (weights @ v) are merged back to [1, S, E] and projected (`out`); the block adds
that to its input (the residual) and normalises (LayerNorm 1). The feed-forward widens each position to
d_ff, applies ReLU, and narrows back: it keeps the shape [1, S, E]. Another residual and LayerNorm 2
close the block. LayerNorm standardises each position's E values — mean about 0, standard deviation
about 1 — *before* its learned scale and shift (the affine part), which then move them a little."""),
    ("code", """\
context = weights @ v_heads                                          # [1, H, S, D]
attn_out = F.linear(F.merge_heads(context), p["attention.out.weight"], p["attention.out.bias"])  # [1, S, E]
residual1 = x + attn_out
norm1 = F.layer_norm(residual1, p["norm1.weight"], p["norm1.bias"], config.ln_eps)
ff = F.feed_forward(norm1, p, record=lambda name, value: None)       # [1, S, E]
residual2 = norm1 + ff
norm2 = F.layer_norm(residual2, p["norm2.weight"], p["norm2.bias"], config.ln_eps)
print("feed-forward:", list(norm1.shape), "->", list(ff.shape), "keeps the shape:", ff.shape == norm1.shape)

def describe(name, t):
    print(f"  {name:38} mean {t.mean():+.4f}  std {t.std():.4f}   per position: mean within "
          f"[{t.mean(-1).min():+.4f}, {t.mean(-1).max():+.4f}], std within [{t.std(-1).min():.4f}, {t.std(-1).max():.4f}]")

for name, before, after in (("norm1", residual1, norm1), ("norm2", residual2, norm2)):
    print(name)
    describe("before (the residual)", before)
    describe("standardised, before the affine part", phases.standardize(before, config.ln_eps))
    describe("after (× weight + bias)", after)
print("the same as the model's trace:", np.array_equal(norm2, trace["layers.0.norm2"]))"""),
    ("code", """\
# The same statistics for every block, as numpy-ref inspect computes them.
for layer in phases.feed_forward_phase(model, trace):
    display(HTML(f"<b>layer {layer.layer}</b>" + H.norms_table(layer)))"""),
    ("md", """\
## 4. Output: logits → probabilities → a word

The last block's output goes through the final Linear(E, V): logits [1, S, V], one score per word of
the vocabulary at every position. The last position's logits predict the word after the prompt: their
softmax is a probability distribution, and its argmax is the model's choice."""),
    ("code", """\
x_out = norm2
for layer in range(1, config.n_layers):
    x_out = F.decoder_block(x_out, F.block_params(params, layer), config, record=lambda name, value: None)
logits = F.linear(x_out, params["final_layer.weight"], params["final_layer.bias"])   # [1, S, V]
print("logits", list(logits.shape), "  the same as model(ids):", np.array_equal(logits, model(ids)))
probabilities = F.softmax(logits[0, -1].astype(np.float64))   # [V]
print(f"softmax of the last position sums to {probabilities.sum():.6f}; the top 5:")
for rank, i in enumerate(np.argsort(-probabilities)[:5], 1):
    print(f"  {rank}. {model.vocab[i]:12} p = {probabilities[i]:.4f}")
print("argmax ->", model.vocab[int(np.argmax(logits[0, -1]))])"""),
    ("md", """\
## 5. The loop: one word at a time

By hand, as the notebook did: run the prompt (unpadded, sliced positions), take the argmax of the last
position, append it to the ids, run again. Each row shows the context length and the chosen word with
its probability. `numpy_ref.generate` calls this way the `notebook` mode; the last line checks that it
chooses the same words."""),
    ("code", """\
STEPS = 8
loop_ids = list(encoded.ids)
for step in range(1, STEPS + 1):
    context = np.array([loop_ids[-config.max_seq_len:]])          # [1, S]
    last = model(context)[0, -1]                                 # [V]
    chosen = int(np.argmax(last))
    probability = F.softmax(last.astype(np.float64))[chosen]
    print(f"step {step}: context {list(context.shape)} -> {model.vocab[chosen]:12} p = {probability:.4f}")
    loop_ids.append(chosen)
print("text:", " ".join(model.vocab[i] for i in loop_ids))

from numpy_ref.generate import generate
by_generate = generate(model, config, model.vocab, list(encoded.ids), STEPS, mode="notebook")
print("the same words as numpy_ref.generate (notebook mode):", by_generate.ids == loop_ids)"""),
    ("md", """\
## All five phases at once

`numpy_ref.phases.inspect` computes every check above in one call; `numpy-ref inspect` prints it in the
terminal and `numpy-ref inspect --html page.html` writes it as one self-contained page."""),
    ("code", """\
report = phases.inspect(model, PROMPT, steps=STEPS, top_k=5, checkpoint=str(CHECKPOINT))
for answer in report.question.answers:
    print(f"layer {answer.layer} head {answer.head}: else → if ({answer.weight:.2f}); "
          f"overall {answer.overall.label} ({answer.overall.weight:.2f})")
page = Path(tempfile.mkdtemp()) / "inspect.html"
H.write_page(page, H.inspection_page(report))
print("the whole inspection as a page:", page)"""),
]


def build() -> nbformat.NotebookNode:
    cells = [new_markdown_cell(text) if kind == "md" else new_code_cell(text) for kind, text in CELLS]
    notebook = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    for index, cell in enumerate(notebook.cells):  # stable ids, so that a rebuild changes nothing
        cell["id"] = f"cell-{index:02d}"
    return notebook


def text() -> str:
    return nbformat.writes(build()) + "\n"


if __name__ == "__main__":
    NOTEBOOK.write_text(text(), encoding="utf-8")
    print(f"wrote {NOTEBOOK}", file=sys.stderr)
