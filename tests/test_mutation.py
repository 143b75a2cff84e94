"""The parity suite has teeth: every mutant of benchmarks/mutants.py (a single-point bug
in a copy of the NumPy forward, or of the NumPy backward: the grad_* mutants, checked
against autograd) is caught, and the first mismatch names the intermediate (or gradient)
where its bug lives. The whole set runs (about 7 s of test time, 2 s of it the backward
mutants, with one torch thread on a busy 2-core machine); benchmarks/mutation.py prints the
same results as a table."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from numpy_ref.config import ModelConfig
from torch_model.grad_parity import default_grad_cases
from torch_model.parity import default_cases

from conftest import random_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import mutants  # noqa: E402
from mutants import MUTANTS, Mutant, MutantError, Runner  # noqa: E402

CONFIG = ModelConfig(vocab_size=64)  # SPEC's default
BY_NAME = {m.name: m for m in MUTANTS}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def runner():
    return Runner(random_checkpoint(CONFIG, seed=7), default_cases(CONFIG, seed=3), default_grad_cases(CONFIG, seed=3))


def _digest(file: str = "forward") -> str:
    return hashlib.sha256(mutants.PATHS[file].read_bytes()).hexdigest()


def test_every_mutant_applies_and_names_a_trace_name():
    mutants.check_sites(CONFIG)


def test_the_unmutated_copy_passes(runner):
    """The control: forward.py compiled the same way, unchanged, agrees with PyTorch."""
    for dtype, report in runner.control().items():
        assert report.ok, f"{dtype}: first mismatch {report.first_mismatch.name}"


def test_the_unmutated_backward_copy_passes(runner):
    """The control of the backward mutants: backward.py compiled the same way agrees with autograd."""
    for dtype, report in runner.control_backward().items():
        assert report.ok, f"{dtype}: first mismatch {report.first_mismatch.name}"


def test_the_brief_s_backward_mutants_are_there():
    backward = {m.name for m in MUTANTS if m.file == "backward" and not m.own}
    assert backward == {"grad_q_weight_transposed", "grad_softmax_no_row_sum", "grad_pad_row_updated", "grad_no_scale"}


@pytest.mark.parametrize("name", list(BY_NAME))
def test_mutant_is_caught_where_its_bug_lives(runner, name):
    mutant = BY_NAME[name]
    before = _digest(mutant.file)
    result = runner.run(mutant)
    assert _digest(mutant.file) == before, "the reference file on disk was modified"
    f32, f64 = result.runs["float32"], result.runs["float64"]
    if mutant.equivalent:
        assert not f64.caught and not f32.caught, f"an equivalent mutant was caught: f64 {f64.first}, f32 {f32.first}"
        return
    assert f64.caught, "float64 did not catch it"
    assert f64.first == mutant.site, f"float64: first mismatch {f64.first}, expected {mutant.site}"
    if mutant.float32:
        # Argued below float32 resolution: the argument must hold numerically, or float32 must catch it anyway.
        assert result.localized("float32") or result.effect <= f32.tol_at_site, result.verdicts["float32"]
    else:
        assert f32.caught, f"float32 did not catch it (effect {result.effect:.1e} at {mutant.site})"
        assert f32.first == mutant.site, f"float32: first mismatch {f32.first}, expected {mutant.site}"
    assert result.ok, result.verdicts


def test_eps_mutants_are_caught_in_float32_at_spec_init_scale():
    """The float32 argument of the LayerNorm-eps mutants is about the inputs, not a blind spot:
    with embeddings at SPEC's init scale the residual's variance is about 0.02 and float32 sees eps."""
    checkpoint = mutants.at_spec_init_scale(random_checkpoint(CONFIG, seed=7))
    scaled = Runner(checkpoint, default_cases(CONFIG, seed=3))
    argued = [m for m in MUTANTS if m.float32]
    assert argued
    for mutant in argued:
        result = scaled.run(mutant)
        assert result.localized("float32") and result.localized("float64"), (mutant.name, result.runs)


def _fake(original: str) -> Mutant:
    return Mutant("fake", "test", original, original + " ", "logits", "test")


def test_a_snippet_that_is_not_there_exactly_once_raises():
    source = mutants.reference_source()
    absent = "this text is not in forward.py"
    assert source.count(absent) == 0
    with pytest.raises(MutantError, match="occurs 0 times"):
        mutants.apply(source, _fake(absent))
    twice = "np.ndarray"
    assert source.count(twice) > 1
    with pytest.raises(MutantError, match=f"occurs {source.count(twice)} times"):
        mutants.apply(source, _fake(twice))
    with pytest.raises(MutantError, match="equals the original"):
        mutants.apply(source, Mutant("same", "test", "x = tokens + pos", "x = tokens + pos", "embed.out", "test"))


def test_a_mutant_that_rotted_fails_loudly():
    """When forward.py changes under a mutant, building it raises instead of running the unmutated code."""
    mutant = BY_NAME["pos_twice"]
    changed = mutants.reference_source().replace(mutant.original, "x = pos + tokens")
    with pytest.raises(MutantError, match="pos_twice"):
        mutants.mutant_forward(mutant, changed)
    backward = BY_NAME["grad_no_scale"]
    changed = mutants.reference_source("backward").replace(backward.original, "return d_scores_scaled * 1.0")
    with pytest.raises(MutantError, match="grad_no_scale.*backward.py"):
        mutants.mutant_backward(backward, changed)
