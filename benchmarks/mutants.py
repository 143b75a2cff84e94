"""Mutation testing of the parity suite: deliberate single-point bugs in a COPY of
the NumPy forward (numpy_ref/forward.py), each checked against the unchanged
PyTorch model with torch_model.parity.run_parity.

A mutant is one exact textual replacement in the source text of forward.py. The
original snippet must occur exactly once, so that a mutant can never silently
rot when forward.py changes: it fails loudly instead (MutantError). The mutated
text is compiled as a fresh module in the package context of `numpy_ref` (so its
relative imports work); the file on disk is never touched.

Each mutant names the trace intermediate where its bug lives (`site`): the
first intermediate, in execution order, whose value the bug changes. The goal:

    float64  caught, and the first mismatch is `site`
    float32  the same, unless the mutant carries a written argument that its
             effect is below float32 resolution; that argument is then checked
             numerically: the mutant's effect at `site` (the relative change it
             causes there, measured in float64) must be within the float32
             tolerance at `site`
    an equivalent mutant (same values in exact arithmetic) must NOT be caught in
             either dtype: catching it would mean the tolerance calls a
             legitimate refactor wrong

Backward mutants (file="backward") are the same thing for the gradients: one
textual replacement in a copy of numpy_ref/backward.py, whose `backward` runs after
the unchanged NumPy forward and is checked against autograd with
torch_model.grad_parity.run_grad_parity. Their site is a gradient row ("grad:<name>",
or "loss"), and the rows are read in reverse execution order
(numpy_ref.backward.gradient_order), so the site is the first gradient, counted from
the loss, whose value the bug changes.

Used by benchmarks/mutation.py (the table) and tests/test_mutation.py.
"""

from __future__ import annotations

import math
import types
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import numpy_ref
import numpy_ref.backward
import numpy_ref.forward
from numpy_ref.backward import gradient_order
from numpy_ref.schema import trace_names

FORWARD_PATH = Path(numpy_ref.forward.__file__)
BACKWARD_PATH = Path(numpy_ref.backward.__file__)
PATHS = {"forward": FORWARD_PATH, "backward": BACKWARD_PATH}  # what a mutant's `file` names
DTYPES = ("float32", "float64")


class MutantError(ValueError):
    """A mutant no longer applies to its file (its snippet is not there exactly once)."""


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    original: str       # exact text of forward.py, occurring exactly once
    replacement: str
    site: str           # the trace name where the bug lives: the first mismatch must be here
    why: str            # one line: why the first divergence is at `site`
    float32: str = ""   # argument why float32 may not see it (below float32 resolution); checked numerically
    equivalent: str = ""  # argument why it computes the same values (expected NOT caught)
    own: bool = False   # added beyond the brief's list
    file: str = "forward"  # the file it mutates: "forward" (forward.py) or "backward" (backward.py)


def _redefine(signature: str, new_definition: str, renamed: str) -> tuple[str, str]:
    """(original, replacement) that replaces a function by `new_definition` and keeps the
    original body under another name (anchored on the def line only, so that edits of the
    body's comments do not break the mutant)."""
    old_name = signature[len("def "):signature.index("(")]
    return signature, new_definition.rstrip() + "\n\n\n" + signature.replace(f"def {old_name}(", f"def {renamed}(", 1)


_SOFTMAX_WRONG_AXIS = _redefine(
    "def softmax(scores: np.ndarray) -> np.ndarray:",
    '''def softmax(scores):
    # MUTANT: normalised over axis -2 (the queries) instead of -1 (the keys)
    shifted = scores - scores.max(axis=-2, keepdims=True)
    exps = np.exp(shifted)
    return exps / exps.sum(axis=-2, keepdims=True)''',
    "_original_softmax",
)

_PRE_NORM = _redefine(
    "def decoder_block(x: np.ndarray, p: dict, config: ModelConfig, record) -> np.ndarray:",
    '''def decoder_block(x, p, config, record):
    # MUTANT: pre-norm (GPT-2 style): x = x + attention(norm1(x)); x = x + ff(norm2(x))
    h = layer_norm(x, p["norm1.weight"], p["norm1.bias"], config.ln_eps)
    residual1 = x + self_attention(h, p, config, record)
    record("residual1", residual1)
    record("norm1", h)
    h = layer_norm(residual1, p["norm2.weight"], p["norm2.bias"], config.ln_eps)
    residual2 = residual1 + feed_forward(h, p, record)
    record("residual2", residual2)
    record("norm2", residual2)
    return residual2''',
    "_original_decoder_block",
)

_LN_EPS_ARGUMENT = (
    "LayerNorm divides by sqrt(var + eps), so a change of the denominator is a relative change of "
    "the output: eps 1e-6 for 1e-5 changes it by d / (2 var) with d = 9e-6; eps outside the root by "
    "eps / sqrt(var) - eps / (2 var). On the seeded weights every row of layers.0.residual1 has a "
    "variance of 0.93 or more (median 1.6: embeddings of std 1, positions of std 0.5), so the "
    "change is at most 4.9e-6 and 5.2e-6 (measured 3.4e-6 and 4.6e-6 of the tensor's scale): above "
    "float32 rounding (correct code: 2e-7 at norm1) but under the policy's 1e-5 floor. float64 "
    "(1e-12) catches it by six orders of magnitude. With embed and pos at SPEC's init scale "
    "(--spec-init-scale, variance 0.02) the change is 2e-4 and float32 catches it at layers.0.norm1."
)

MUTANTS: list[Mutant] = [
    # --- the brief's list -------------------------------------------------------------
    Mutant("no_scale", "no scaling by sqrt(D)",
           "return scores_raw / math.sqrt(head_dim)", "return scores_raw",
           "layers.0.attention.scores_scaled",
           "scores_raw is computed before the division; the division is what makes scores_scaled"),
    Mutant("scale_by_D", "scores divided by D instead of sqrt(D)",
           "return scores_raw / math.sqrt(head_dim)", "return scores_raw / head_dim",
           "layers.0.attention.scores_scaled",
           "same step as no_scale: only the divisor changes"),
    Mutant("mask_diag", "mask triu with k=0: a token cannot see itself",
           "np.triu(np.ones((seq_len, seq_len), dtype=dtype), k=1)",
           "np.triu(np.ones((seq_len, seq_len), dtype=dtype), k=0)",
           "layers.0.attention.mask",
           "the mask tensor itself gets -1e9 on its diagonal; it is compared bit for bit"),
    Mutant("mask_not_applied", "the mask is built but not added",
           "return scores_scaled + mask", "return scores_scaled",
           "layers.0.attention.scores_masked",
           "mask is built correctly; the add that makes scores_masked is skipped (invisible at S=1, "
           "where the mask is all 0; the S>1 cases see it)"),
    Mutant("mask_value_-10", "mask value -10 instead of -1e9 (future tokens leak)",
           "above_diagonal * np.asarray(mask_value, dtype=dtype)",
           "above_diagonal * np.asarray(-10.0, dtype=dtype)",
           "layers.0.attention.mask",
           "the mask tensor holds -10 where -1e9 belongs; compared bit for bit"),
    Mutant("softmax_axis", "softmax over axis -2 (queries) instead of -1 (keys)",
           *_SOFTMAX_WRONG_AXIS,
           "layers.0.attention.weights",
           "scores_masked is right; softmax is the step that makes weights (invisible at S=1)"),
    Mutant("split_no_transpose", "heads split as [B, H, S, D] straight from a reshape",
           "return per_head.transpose(0, 2, 1, 3)",
           "return x.reshape(batch, n_heads, seq_len, d_model // n_heads)",
           "layers.0.attention.q_heads",
           "q, k, v are right; q_heads is the first split recorded (invisible at S=1)"),
    Mutant("merge_no_transpose", "heads merged without transposing back to [B, S, H, D]",
           "per_position = context.transpose(0, 2, 1, 3)", "per_position = context",
           "layers.0.attention.context_merged",
           "context is right; merge_heads makes context_merged (invisible at S=1)"),
    Mutant("qk_swapped", "q and k swapped in the scores: k @ q^T",
           "scores_raw = attention_scores(q_heads, k_heads)",
           "scores_raw = attention_scores(k_heads, q_heads)",
           "layers.0.attention.scores_raw",
           "the heads are right; the product k q^T = (q k^T)^T is scores_raw (invisible at S=1)"),
    Mutant("ln_unbiased", "LayerNorm with the unbiased variance (divides by E - 1)",
           "(centered * centered).mean(axis=-1, keepdims=True)",
           "(centered * centered).sum(axis=-1, keepdims=True) / (x.shape[-1] - 1)",
           "layers.0.norm1",
           "residual1 is the LayerNorm's input and is right; norm1 is the first LayerNorm output"),
    Mutant("eps_outside_sqrt", "LayerNorm eps outside the square root: sqrt(var) + eps",
           "np.sqrt(variance + eps)", "(np.sqrt(variance) + eps)",
           "layers.0.norm1",
           "norm1 is the first LayerNorm output",
           float32=_LN_EPS_ARGUMENT),
    Mutant("eps_1e-6", "LayerNorm eps 1e-6 instead of the config's 1e-5",
           "np.sqrt(variance + eps)", "np.sqrt(variance + 1e-6)",
           "layers.0.norm1",
           "norm1 is the first LayerNorm output",
           float32=_LN_EPS_ARGUMENT),
    Mutant("pre_norm", "pre-norm block: x + attention(norm1(x)), x + ff(norm2(x))",
           *_PRE_NORM,
           "layers.0.attention.q",
           "the attention's input becomes norm1(x) instead of x, and q is the first value computed from it"),
    Mutant("gelu", "GELU (tanh form) instead of ReLU",
           "hidden = relu(hidden_pre)",
           "hidden = 0.5 * hidden_pre * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (hidden_pre + 0.044715 * hidden_pre**3)))",
           "layers.0.feed_forward.hidden",
           "hidden_pre is right; the activation makes hidden"),
    Mutant("ffn_bias_dropped", "the FFN's first Linear without its bias",
           'p["feed_forward.linear1.weight"], p["feed_forward.linear1.bias"])',
           'p["feed_forward.linear1.weight"], 0.0)',
           "layers.0.feed_forward.hidden_pre",
           "norm1 (its input) is right; linear1 makes hidden_pre"),
    Mutant("pos_from_end", "positions taken from the end: pos[:, -S:]",
           "pos_encoding[:, :seq_len, :]", "pos_encoding[:, -seq_len:, :]",
           "embed.pos",
           "the slice is embed.pos (invisible at S = max_seq_len; the S=1 and S=5 cases see it)"),
    Mutant("pos_twice", "position added twice",
           "x = tokens + pos", "x = tokens + pos + pos",
           "embed.out",
           "tokens and pos are right; their sum is embed.out"),
    Mutant("pad_zero", "embedding of the pad id forced to zero",
           "return embed_weight[ids]", "return embed_weight[ids] * (ids != 0)[..., None]",
           "embed.tokens",
           "the lookup is embed.tokens (needs the pad id in the inputs: default_cases puts one in every case)"),
    Mutant("final_bias_dropped", "the final layer without its bias",
           'params["final_layer.weight"], params["final_layer.bias"])',
           'params["final_layer.weight"], 0.0)',
           "logits",
           "every block is right; the unembedding makes logits"),
    Mutant("fp16_matmul", "weights @ v accumulated in float16",
           "context = weights @ v_heads",
           "context = (weights.astype(np.float16) @ v_heads.astype(np.float16)).astype(weights.dtype)",
           "layers.0.attention.context",
           "weights and v_heads are right; their product is context"),
    # --- added: porting mistakes one would really make ------------------------------------
    Mutant("q_weight_untransposed", "q projection as x @ W (weights read as [in, out], Haskell's layout)",
           'q = linear(x, p["attention.q.weight"], p["attention.q.bias"])',
           'q = x @ p["attention.q.weight"] + p["attention.q.bias"]',
           "layers.0.attention.q",
           "embed.out is right; q is the projection", own=True),
    Mutant("heads_interleaved", "heads split column-major: reshape [B, S, D, H], head h = columns h, h+H, ...",
           "per_head = x.reshape(batch, seq_len, n_heads, d_model // n_heads)",
           "per_head = x.reshape(batch, seq_len, d_model // n_heads, n_heads).transpose(0, 1, 3, 2)",
           "layers.0.attention.q_heads",
           "q is right; q_heads is the first split recorded (visible even at S=1)", own=True),
    Mutant("mask_neg_inf", "masked_fill with -inf instead of adding -1e9 (SPEC: added, not -inf)",
           "above_diagonal * np.asarray(mask_value, dtype=dtype)",
           "np.where(above_diagonal > 0, np.asarray(-np.inf, dtype=dtype), np.asarray(0, dtype=dtype))",
           "layers.0.attention.mask",
           "the mask tensor holds -inf; the weights and logits are unchanged, only the per-intermediate "
           "comparison can see it", own=True),
    Mutant("scale_sqrt_d_model", "scores divided by sqrt(d_model) instead of sqrt(head_dim)",
           "scale_scores(scores_raw, config.head_dim)", "scale_scores(scores_raw, config.d_model)",
           "layers.0.attention.scores_scaled",
           "scores_raw is right; the division makes scores_scaled", own=True),
    Mutant("blocks_share_layer0", "every block reads layer 0's parameters",
           "block_params(params, layer)", "block_params(params, 0)",
           "layers.1.attention.q",
           "block 0 is right; block 1's first value computed from its own weights is q", own=True),
    Mutant("ffn_residual_dropped", "the FFN's residual connection dropped: norm2(ff) instead of norm2(x + ff)",
           "residual2 = x + ff", "residual2 = ff",
           "layers.0.residual2",
           "feed_forward.out is right; the add makes residual2", own=True),
    Mutant("softmax_no_shift", "softmax without subtracting the row maximum",
           "shifted = scores - scores.max(axis=-1, keepdims=True)", "shifted = scores",
           "layers.0.attention.weights",
           "softmax makes weights",
           equivalent="exp(s - m) / sum exp(s - m) = exp(s) / sum exp(s) exactly; the scaled scores here "
                      "are far below exp's overflow (88 in float32) and exp(-1e9 + s) is 0 either way, so "
                      "only the rounding differs (a few ulps). Not catching it shows the tolerance does not "
                      "call a legitimate refactor wrong.", own=True),
]

# Backward mutants: single-point bugs in a copy of backward.py, checked against autograd.
# Sites are gradient rows, read from the loss backwards: the last block (layers.1) comes first.
BACKWARD_MUTANTS: list[Mutant] = [
    # --- the brief's list -------------------------------------------------------------
    Mutant("grad_q_weight_transposed", "q's weight gradient transposed (q.weight is square, so the shape fits)",
           'd_x_from_q, grads["attention.q.weight"], grads["attention.q.bias"] = linear_backward(d_q, x, p["attention.q.weight"])',
           'd_x_from_q, d_q_weight, grads["attention.q.bias"] = linear_backward(d_q, x, p["attention.q.weight"]); '
           'grads["attention.q.weight"] = d_q_weight.T',
           "grad:layers.1.attention.q.weight",
           "the gradient at q is right; only the weight gradient computed from it is wrong (the last block's first)",
           file="backward"),
    Mutant("grad_softmax_no_row_sum", "softmax backward without the Jacobian's row-sum term: d_scores = w * d_w",
           "return weights * (d_weights - row_sum)", "return weights * d_weights",
           "grad:layers.1.attention.scores_masked",
           "the gradient at weights is right; the softmax's backward makes the gradient at scores_masked",
           file="backward"),
    Mutant("grad_pad_row_updated", "the embedding's pad row gets a gradient (padding_idx ignored)",
           "d_embed[pad_id] = 0", "pass",
           "grad:embed.weight",
           "every intermediate's gradient is right; the scatter into the embedding is the last step "
           "(needs the pad id among the inputs: default_grad_cases puts one in every case)",
           file="backward"),
    Mutant("grad_no_scale", "no 1/sqrt(D) in the backward of the scaling",
           "return d_scores_scaled / math.sqrt(head_dim)", "return d_scores_scaled",
           "grad:layers.1.attention.scores_raw",
           "the gradient at scores_scaled is right; the scaling's backward makes the gradient at scores_raw",
           file="backward"),
    # --- added: backward mistakes one would really make ------------------------------------
    Mutant("grad_embed_fancy_add", "embedding gradient by fancy-indexed += (a repeated id keeps only one row)",
           "np.add.at(d_embed, ids, d_tokens)", "d_embed[ids] += d_tokens",
           "grad:embed.weight",
           "the gradient at embed.tokens is right; the scatter loses repeated ids (every batch repeats some)",
           own=True, file="backward"),
    Mutant("grad_ce_mean_over_all", "cross-entropy gradient divided by every position, pad targets included",
           "(counted / counted.sum())", "(counted / counted.size)",
           "grad:logits",
           "the loss itself is right; its gradient is the first one computed (the cases have pad targets)",
           own=True, file="backward"),
    Mutant("grad_ln_no_mean_term", "LayerNorm backward without the term through the mean",
           "d_x = (d_normalized - d_mean_term - d_variance_term) * inv_std",
           "d_x = (d_normalized - d_variance_term) * inv_std",
           "grad:layers.1.residual2",
           "the gradient at norm2 is right; the last block's norm2 backward makes the gradient at residual2",
           own=True, file="backward"),
    Mutant("grad_residual_dropped", "norm1's gradient misses the residual path around the FFN",
           "d_norm1 = d_residual2 + d_norm1_through_ffn", "d_norm1 = d_norm1_through_ffn",
           "grad:layers.1.norm1",
           "the FFN's gradients are right; the sum of norm1's two uses is its gradient", own=True, file="backward"),
    Mutant("grad_k_untransposed", "key gradient as d_scores @ q instead of d_scores^T @ q",
           "d_k_heads = d_scores_transposed @ q_heads", "d_k_heads = d_scores_raw @ q_heads",
           "grad:layers.1.attention.k_heads",
           "the gradient at scores_raw (and q_heads) is right; k_heads' is made from it", own=True, file="backward"),
    Mutant("grad_pos_first_row_only", "positional gradient from the first sequence of the batch, not summed over it",
           "d_pos = d_x.sum(axis=0, keepdims=True)", "d_pos = d_x[:1]",
           "grad:embed.pos",
           "the gradient at embed.out is right; the broadcast's backward makes embed.pos's (B > 1 cases see it)",
           own=True, file="backward"),
    Mutant("grad_relu_from_output", "ReLU backward read off its output: hidden > 0 instead of hidden_pre > 0",
           'relu_backward(d_hidden, t("feed_forward.hidden_pre"))', 'relu_backward(d_hidden, t("feed_forward.hidden"))',
           "grad:layers.1.feed_forward.hidden_pre",
           "the ReLU's backward makes the gradient at hidden_pre",
           equivalent="max(x, 0) > 0 exactly when x > 0, so the mask and every gradient are bit for bit the same: "
                      "a legitimate refactor, which must not be called wrong.",
           own=True, file="backward"),
]
MUTANTS += BACKWARD_MUTANTS


# ---------------------------------------------------------------------------
# Applying a mutant


def reference_source(file: str = "forward") -> str:
    return PATHS[file].read_text(encoding="utf-8")


def apply(source: str, mutant: Mutant) -> str:
    """The source with the mutant's one replacement; MutantError unless its snippet occurs exactly once."""
    if mutant.original == mutant.replacement:
        raise MutantError(f"mutant {mutant.name}: the replacement equals the original snippet")
    count = source.count(mutant.original)
    if count != 1:
        name = PATHS[mutant.file].name
        raise MutantError(
            f"mutant {mutant.name}: its snippet occurs {count} times in {name} (it must occur "
            f"exactly once; {name} changed, so update the mutant): {mutant.original!r}"
        )
    return source.replace(mutant.original, mutant.replacement, 1)


def compile_module(source: str, label: str, file: str = "forward") -> types.ModuleType:
    """Compile the text of forward.py or backward.py as a fresh module inside the numpy_ref
    package (relative imports work)."""
    path = PATHS[file]
    module = types.ModuleType(f"numpy_ref._mutant_{file}_{label}")
    module.__package__ = "numpy_ref"
    module.__file__ = str(path)
    exec(compile(source, f"<{path.name}, mutant {label}>", "exec"), module.__dict__)
    return module


def compile_forward(source: str, label: str) -> types.ModuleType:
    """Compile forward.py's text as a fresh module inside the numpy_ref package (relative imports work)."""
    return compile_module(source, label, "forward")


def mutant_forward(mutant: Mutant, source: str | None = None):
    """The `forward` function of forward.py with the mutant applied."""
    return compile_forward(apply(reference_source() if source is None else source, mutant), mutant.name).forward


def control_forward(source: str | None = None):
    """forward.py compiled the same way, unmutated: the control (must pass parity)."""
    return compile_forward(reference_source() if source is None else source, "control").forward


def mutant_backward(mutant: Mutant, source: str | None = None):
    """The `backward` function of backward.py with the mutant applied."""
    source = reference_source("backward") if source is None else source
    return compile_module(apply(source, mutant), mutant.name, "backward").backward


def control_backward(source: str | None = None):
    """backward.py compiled the same way, unmutated: the control (must pass gradient parity)."""
    source = reference_source("backward") if source is None else source
    return compile_module(source, "control", "backward").backward


def gradient_rows(n_layers: int) -> list[str]:
    """The row names of a gradient report (torch_model.grad_parity): "loss", then "grad:<name>"."""
    return ["loss"] + ["grad:" + name for name in gradient_order(n_layers)]


def check_sites(config) -> None:
    """Every mutant applies and names a real intermediate (a typo would make 'localized' meaningless)."""
    names = {"forward": set(trace_names(config.n_layers)), "backward": set(gradient_rows(config.n_layers))}
    sources = {file: reference_source(file) for file in PATHS}
    for mutant in MUTANTS:
        if mutant.file not in PATHS:
            raise MutantError(f"mutant {mutant.name}: file {mutant.file!r} is not one of {sorted(PATHS)}")
        apply(sources[mutant.file], mutant)
        if mutant.site not in names[mutant.file]:
            kind = "trace name" if mutant.file == "forward" else "gradient row"
            raise MutantError(f"mutant {mutant.name}: site {mutant.site!r} is not a {kind}")
    seen = [m.name for m in MUTANTS]
    if len(seen) != len(set(seen)):
        raise MutantError("two mutants share a name")


def at_spec_init_scale(checkpoint, std: float = 0.005):
    """The checkpoint with embed.weight and pos_encoding rescaled to SPEC's init, N(0, 1) * 0.005
    (the seeded random weights use std 1 and 0.5). The residual stream entering norm1 then has a
    variance near 0.01 instead of 1, where LayerNorm's eps shows in float32 too."""
    from numpy_ref.checkpoint import Checkpoint

    params = dict(checkpoint.params)
    for name in ("embed.weight", "pos_encoding"):
        value = params[name].astype(np.float64)
        params[name] = (value * (std / value.std())).astype(np.float32)
    return Checkpoint(checkpoint.config, checkpoint.vocab, params)


# ---------------------------------------------------------------------------
# Running one mutant


def _traces(forward, params: dict, config, cases) -> list[OrderedDict]:
    out = []
    for case in cases:
        trace = OrderedDict()
        forward(params, config, np.asarray(case.ids, dtype=np.int64), trace)
        out.append(trace)
    return out


def _gradients(backward, params: dict, config, grad_cases) -> list[dict]:
    """Per case, the gradient report's rows ("loss", "grad:<name>"): NumPy's forward, then `backward`."""
    from torch_model.grad_parity import numpy_gradients, report_rows

    rows = []
    for case in grad_cases:
        *result, _ = numpy_gradients(params, config, np.asarray(case.ids, dtype=np.int64), case.targets, backward)
        rows.append(report_rows(*result, config.n_layers))
    return rows


def effect_at(site: str, mutated: list[OrderedDict], reference: list[OrderedDict]) -> float:
    """The mutant's relative change at `site`: max |mutant - reference| / max |reference|, both
    maxima over all the cases (one scale for all inputs, so that a tensor that is 0 for one input,
    like the S = 1 mask, does not make the change infinite). inf if non-finite or of another shape."""
    diff = scale = 0.0
    for mut, ref in zip(mutated, reference):
        actual, expected = np.asarray(mut[site], np.float64), np.asarray(ref[site], np.float64)
        if actual.shape != expected.shape or not np.all(np.isfinite(actual)):
            return math.inf
        if expected.size:
            diff = max(diff, float(np.max(np.abs(actual - expected))))
            scale = max(scale, float(np.max(np.abs(expected))))
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / scale


@dataclass
class DtypeResult:
    caught: bool
    first: str | None       # first mismatch (name), None if not caught
    tol_at_site: float      # the tolerance the suite applied at the site (float32: may be widened by noise)
    logits_caught: bool     # whether the logits (vs torch) alone would have caught it; for a backward
                            # mutant, whether the parameters' gradients alone would have


@dataclass
class Result:
    mutant: Mutant
    effect: float                                       # float64 relative change at the site
    runs: dict[str, DtypeResult] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)  # dtype -> "ok ..." or "FAIL ..."

    def localized(self, dtype: str) -> bool:
        run = self.runs[dtype]
        return run.caught and run.first == self.mutant.site

    @property
    def ok(self) -> bool:
        return all(v.startswith("ok") for v in self.verdicts.values())


def judge(result: Result) -> None:
    """Fill result.verdicts against the goal (see the module docstring)."""
    mutant = result.mutant
    for dtype, run in result.runs.items():
        if mutant.equivalent:
            result.verdicts[dtype] = ("ok: equivalent, not caught" if not run.caught
                                      else f"FAIL: an equivalent mutant was caught at {run.first} (tolerance too tight?)")
        elif result.localized(dtype):
            result.verdicts[dtype] = "ok"
        elif dtype == "float32" and mutant.float32:
            if result.effect <= run.tol_at_site:
                result.verdicts[dtype] = (f"ok: argued, effect {result.effect:.1e} <= float32 tolerance "
                                          f"{run.tol_at_site:.1e} at the site")
            else:
                result.verdicts[dtype] = (f"FAIL: argued below float32 resolution, but the effect {result.effect:.1e} "
                                          f"exceeds the tolerance {run.tol_at_site:.1e} at the site")
        elif not run.caught:
            result.verdicts[dtype] = "FAIL: survived"
        else:
            result.verdicts[dtype] = f"FAIL: caught at {run.first}, not at {mutant.site}"


class Runner:
    """Runs mutants against one checkpoint and one set of cases, with the float64 reference
    trace (for the effect sizes) computed once."""

    def __init__(self, checkpoint, cases, grad_cases=None):
        from torch_model.parity import run_parity  # torch only where parity runs

        self._run_parity = run_parity
        self.checkpoint, self.cases = checkpoint, cases
        self.source = reference_source()
        self.params64 = numpy_ref.Model.from_checkpoint(checkpoint, "float64").params
        self.reference64 = _traces(control_forward(self.source), self.params64, checkpoint.config, cases)
        # Backward mutants: batches with targets (default_grad_cases when None), set up when first needed.
        self.grad_cases = grad_cases
        self.backward_source = None
        self.gradients64 = None

    def _set_up_backward(self) -> None:
        if self.gradients64 is not None:
            return
        from torch_model.grad_parity import default_grad_cases, run_grad_parity

        self._run_grad_parity = run_grad_parity
        if self.grad_cases is None:
            self.grad_cases = default_grad_cases(self.checkpoint.config)
        self.backward_source = reference_source("backward")
        self.gradients64 = _gradients(control_backward(self.backward_source), self.params64,
                                      self.checkpoint.config, self.grad_cases)

    def control_backward(self) -> dict:
        """Gradient parity of the unmutated backward.py compiled the same way: must be ok in both dtypes."""
        self._set_up_backward()
        backward = control_backward(self.backward_source)
        return {dtype: self._run_grad_parity(self.checkpoint, dtype, self.grad_cases, backward=backward)
                for dtype in DTYPES}

    def _run_backward(self, mutant: Mutant) -> Result:
        self._set_up_backward()
        backward = mutant_backward(mutant, self.backward_source)
        config = self.checkpoint.config
        result = Result(mutant, effect_at(mutant.site, _gradients(backward, self.params64, config, self.grad_cases),
                                          self.gradients64))
        parameter_rows = {"grad:" + name for name in self.params64}
        for dtype in DTYPES:
            report = self._run_grad_parity(self.checkpoint, dtype, self.grad_cases, backward=backward)
            first = report.first_mismatch
            rows = {row.name: row for row in report.rows}
            site_row = rows.get(mutant.site)
            result.runs[dtype] = DtypeResult(
                caught=not report.ok,
                first=None if first is None else first.name,
                tol_at_site=site_row.tol if site_row is not None else math.nan,
                logits_caught=any(not row.ok for name, row in rows.items() if name in parameter_rows),
            )
        judge(result)
        return result

    def control(self) -> dict:
        """Parity of the unmutated source compiled the same way: must be ok in both dtypes."""
        forward = control_forward(self.source)
        return {dtype: self._run_parity(self.checkpoint, dtype, self.cases, forward=forward) for dtype in DTYPES}

    def run(self, mutant: Mutant) -> Result:
        if mutant.file == "backward":
            return self._run_backward(mutant)
        forward = mutant_forward(mutant, self.source)
        config = self.checkpoint.config
        result = Result(mutant, effect_at(mutant.site, _traces(forward, self.params64, config, self.cases), self.reference64))
        for dtype in DTYPES:
            report = self._run_parity(self.checkpoint, dtype, self.cases, forward=forward)
            first = report.first_mismatch
            rows = {(row.name, row.against): row for row in report.rows}
            site_row, logits_row = rows.get((mutant.site, "torch")), rows.get(("logits", "torch"))
            result.runs[dtype] = DtypeResult(
                caught=not report.ok,
                first=None if first is None else first.name,
                tol_at_site=site_row.tol if site_row is not None else math.nan,
                logits_caught=logits_row is not None and not logits_row.ok,
            )
        judge(result)
        return result
