"""Generation (SPEC "Generation in the original") and the KV cache beside the reference."""

import numpy as np
import pytest
import torch

import numpy_ref
from numpy_ref.config import ModelConfig
from numpy_ref.errors import InputError
from numpy_ref.generate import draw, generate, original_adjustments, padded_context, unpadded_context
from numpy_ref.kv_cache import CachedLogits, KVCache
from numpy_ref.parity import relative_error
from numpy_ref_cli.main import main
from torch_model.model import Decoder

from conftest import random_checkpoint

CONFIG = ModelConfig(vocab_size=40, max_seq_len=12)


@pytest.fixture(scope="module")
def checkpoint():
    return random_checkpoint(CONFIG, seed=21)


def test_padded_context_is_left_padded_or_cut_to_the_last_max_seq_len():
    np.testing.assert_array_equal(padded_context([7, 8, 9], 5, 0), [[0, 0, 7, 8, 9]])
    np.testing.assert_array_equal(padded_context(list(range(1, 9)), 5, 0), [[4, 5, 6, 7, 8]])
    np.testing.assert_array_equal(unpadded_context([7, 8, 9], 5), [[7, 8, 9]])
    np.testing.assert_array_equal(unpadded_context(list(range(1, 9)), 5), [[4, 5, 6, 7, 8]])


def test_original_adjustments():
    logits = np.zeros(6)
    # id 1 is <nl>; the text ends with it; of the last 5 ids, 3 occurs twice and 1 once
    adjusted = original_adjustments(logits, [5, 4, 3, 2, 3, 1], newline_id=1)
    np.testing.assert_array_equal(adjusted, [0.0, -1e9 - 2.0, -2.0, -4.0, -2.0, 0.0])
    adjusted = original_adjustments(logits, [1, 2], newline_id=1)  # <nl> not last: no ban
    np.testing.assert_array_equal(adjusted, [0.0, -2.0, -2.0, 0.0, 0.0, 0.0])


def test_draw_is_the_inverse_cdf():
    probabilities = np.array([0.1, 0.6, 0.3])
    assert [draw(probabilities, u) for u in (0.0, 0.0999, 0.1001, 0.69, 0.71, 0.9999)] == [0, 0, 1, 1, 2, 2]


def test_original_next_is_the_argmax_of_the_padded_context(checkpoint):
    model = numpy_ref.Model.from_checkpoint(checkpoint, "float64")
    result = generate(model, CONFIG, checkpoint.vocab, [2, 3, 4], 1, "original-next")
    expected = int(np.argmax(model(np.array([[0] * 9 + [2, 3, 4]]))[0, -1]))
    assert result.steps[0].id == expected and result.steps[0].context_shape == (1, 12)


def test_notebook_is_the_argmax_of_the_unpadded_context(checkpoint):
    model = numpy_ref.Model.from_checkpoint(checkpoint, "float64")
    result = generate(model, CONFIG, checkpoint.vocab, [2, 3, 4], 3, "notebook")
    ids = [2, 3, 4]
    for step in result.steps:
        assert step.id == int(np.argmax(model(np.array([ids]))[0, -1]))
        ids.append(step.id)
    assert [s.context_shape for s in result.steps] == [(1, 3), (1, 4), (1, 5)]


@pytest.mark.parametrize("mode", ["original", "sample", "notebook", "original-next"])
def test_numpy_and_torch_choose_the_same_words_for_the_same_seed(checkpoint, mode):
    model = numpy_ref.Model.from_checkpoint(checkpoint, "float32")
    module = Decoder.from_params(CONFIG, checkpoint.params)

    def torch_logits(context):
        with torch.no_grad():
            return module(torch.from_numpy(context)).numpy()

    runs = [generate(fn, CONFIG, checkpoint.vocab, [1, 2, 3], 30, mode, seed=5, temperature=0.8, top_k=10)
            for fn in (model, torch_logits)]
    assert runs[0].ids == runs[1].ids
    if mode in ("original", "sample"):
        other_seed = generate(model, CONFIG, checkpoint.vocab, [1, 2, 3], 30, mode, seed=6, temperature=0.8, top_k=10)
        assert other_seed.ids != runs[0].ids


def test_top_k_only_draws_from_the_k_most_likely(checkpoint):
    model = numpy_ref.Model.from_checkpoint(checkpoint, "float64")
    result = generate(model, CONFIG, checkpoint.vocab, [4], 1, "sample", seed=0, temperature=50.0, top_k=1)
    assert result.steps[0].id == int(np.argmax(model(np.array([[4]]))[0, -1]))


def test_a_prompt_longer_than_the_context_says_so(checkpoint):
    model = numpy_ref.Model.from_checkpoint(checkpoint, "float32")
    result = generate(model, CONFIG, checkpoint.vocab, list(range(1, 20)), 1, "original")
    assert any("only the last 12" in note for note in result.notes)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_kv_cache_gives_the_recompute_logits_at_every_step(checkpoint, dtype, tol):
    model = numpy_ref.Model.from_checkpoint(checkpoint, dtype)
    cache = KVCache(model)
    ids = [5, 9, 2]
    cached = cache.feed(ids)  # prefill: several tokens at once
    assert relative_error(cached, model(np.array([ids]))) <= tol
    for new in [7, 7, 0, 31, 1, 2, 3, 4, 5]:  # up to max_seq_len = 12
        ids.append(new)
        step_logits = cache.feed([new])[0, -1]
        assert relative_error(step_logits, model(np.array([ids]))[0, -1]) <= tol
    with pytest.raises(ValueError):
        cache.feed([1])


def test_cached_generation_equals_recompute_also_past_the_context(checkpoint):
    model = numpy_ref.Model.from_checkpoint(checkpoint, "float64")
    cached = CachedLogits(model)
    for mode in ("notebook", "sample"):
        with_cache = generate(cached, CONFIG, checkpoint.vocab, [3, 1, 4], 20, mode, seed=2)
        without = generate(model, CONFIG, checkpoint.vocab, [3, 1, 4], 20, mode, seed=2)
        assert with_cache.ids == without.ids
    assert cached.builds > 2  # the window slid past max_seq_len, so the cache was rebuilt


def test_bad_generation_arguments(checkpoint):
    model = numpy_ref.Model.from_checkpoint(checkpoint, "float32")
    with pytest.raises(InputError, match="unknown generation mode"):
        generate(model, CONFIG, checkpoint.vocab, [1], 1, "beam")
    with pytest.raises(InputError, match="empty"):
        generate(model, CONFIG, checkpoint.vocab, [], 1, "original")


def test_generate_cli(tmp_path, checkpoint, capsys):
    path = tmp_path / "model.safetensors"
    numpy_ref.save_checkpoint(path, checkpoint.params, CONFIG, checkpoint.vocab)
    args = ["generate", "--checkpoint", str(path), "--prompt", "if else qqq", "--steps", "5", "--mode", "sample", "--seed", "1"]
    assert main(args) == 0
    numpy_out = capsys.readouterr()
    assert "qqq" in numpy_out.err
    assert main(args + ["--impl", "torch"]) == 0
    assert capsys.readouterr().out == numpy_out.out
    assert main(args + ["--kv-cache"]) == 0
    assert capsys.readouterr().out == numpy_out.out
    assert main(["generate", "--checkpoint", str(path), "--prompt", "if", "--mode", "original", "--kv-cache"]) == 2
