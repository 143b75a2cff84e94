"""Training in NumPy (numpy_ref.train): the same loss curve as PyTorch from the same weights
on the same batches, and `numpy-ref train --impl numpy` end to end where torch cannot be imported."""

from __future__ import annotations

import csv
import textwrap

import numpy as np
import pytest
import torch

import numpy_ref
from numpy_ref.config import ModelConfig
from numpy_ref.data import batch, batches_per_epoch, encode_words
from numpy_ref.optim import Adam, learning_rate
from numpy_ref.train import TrainSettings, curve_path, init_params, state_path, train, train_step
from numpy_ref.vocab import build_vocabulary, words_of_text
from torch_model.model import Decoder
from torch_model.train import make_optimizer
from torch_model.train import train_step as torch_train_step

from conftest import run_without_torch

CORPUS = "\n".join(
    f"c eval {v} = {v} + {n}\nif {v} > {n}\ncallp log{n}\nendif" for v in ("total", "count", "amt") for n in range(12)
) * 6
WORDS = words_of_text(CORPUS)
VOCAB = build_vocabulary(WORDS, WORDS)
IDS = encode_words(WORDS, VOCAB)
TINY = ModelConfig(vocab_size=len(VOCAB), d_model=16, n_heads=2, d_ff=32, n_layers=2, max_seq_len=8)


def loss_curves(dtype: str, steps: int, settings: TrainSettings, config=TINY, ids=IDS, batch_size=4):
    """Both trainers from the same initial weights on the same batches: (NumPy losses, torch
    losses, gradient norms, NumPy params, torch state)."""
    params = init_params(config, seed=1, dtype=dtype)
    model = Decoder.from_params(config, params, {"float32": torch.float32, "float64": torch.float64}[dtype]).train()
    optimizer = make_optimizer(model, settings)
    adam = Adam(params, betas=settings.betas, eps=settings.adam_eps)
    ours, theirs, norms = [], [], []
    for step in range(steps):
        inputs, targets = batch(ids, step, batch_size, config.max_seq_len)
        lr = learning_rate(step, settings.lr, settings.warmup_steps)
        loss, norm = train_step(params, adam, config, inputs, targets, lr, settings.clip_norm)
        expected, expected_norm = torch_train_step(model, optimizer, inputs, targets, lr, settings.clip_norm)
        ours.append(loss)
        theirs.append(expected)
        norms.append((norm, expected_norm))
    return np.array(ours), np.array(theirs), np.array(norms), params, model.state_dict()


def test_fifty_float64_steps_give_the_same_loss_curve_as_pytorch():
    """Every step's loss within 1e-9 relative (measured: about 1e-15). A larger learning rate
    and a shorter warm-up than SPEC's, so that the loss really moves in 50 steps, and a clip
    bound of 2 instead of 0.5, so that both branches of the clipping run (the gradient norm
    of this model stays above 0.5)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ours, theirs, norms, params, state = loss_curves("float64", 50, TrainSettings(lr=3e-3, warmup_steps=10, clip_norm=2.0))
    finally:
        torch.set_num_threads(before)
    relative = np.abs(ours - theirs) / np.abs(theirs)
    assert relative.max() < 1e-9, (relative.argmax(), relative.max())
    assert theirs[-1] < theirs[0] - 0.5  # it learned something
    assert (norms[:, 1] > 2.0).any() and (norms[:, 1] <= 2.0).any()  # clipping did and did not apply
    np.testing.assert_allclose(norms[:, 0], norms[:, 1], rtol=1e-9)
    # The weights agree too, except k's bias: its gradient is 0 in exact arithmetic (softmax
    # ignores a shift shared by a row's scores), so both sides hold rounding, which Adam with
    # eps 1e-37 turns into steps of about lr in directions that differ. The loss never sees it.
    for name, value in params.items():
        if name.endswith("attention.k.bias"):
            continue
        expected = state[name].numpy()
        assert np.max(np.abs(value - expected)) / np.max(np.abs(expected)) < 1e-9, name


def test_numpy_resume_continues_exactly(tmp_path):
    settings = TrainSettings(epochs=2, batch_size=4, seq_len=8, warmup_steps=5, lr=3e-3, log_every=1000, save_every=1000)
    straight, resumed = tmp_path / "straight.safetensors", tmp_path / "resumed.safetensors"
    train(TINY, VOCAB, IDS, IDS, settings, straight, log=lambda *_: None)
    per_epoch = batches_per_epoch(len(IDS), 4, 8)
    half = TrainSettings(**{**settings.__dict__, "max_steps": per_epoch + 3})  # stop inside epoch 2
    train(TINY, VOCAB, IDS, IDS, half, resumed, log=lambda *_: None)
    assert state_path(resumed).exists()
    train(TINY, VOCAB, IDS, IDS, settings, resumed, resume=True, log=lambda *_: None)
    a, b = numpy_ref.load_checkpoint(straight).params, numpy_ref.load_checkpoint(resumed).params
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_train_impl_numpy_runs_where_importing_torch_fails(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    output = tmp_path / "numpy_model.safetensors"
    script = textwrap.dedent(f"""
        import sys

        from numpy_ref_cli.main import main

        code = main(["train", "--impl", "numpy", "--train", {str(corpus)!r}, "--eval", {str(corpus)!r},
                     "-o", {str(output)!r}, "--epochs", "3", "--d-model", "16", "--n-heads", "2", "--d-ff", "32",
                     "--n-layers", "1", "--max-seq-len", "8", "--lr", "3e-3", "--warmup", "5", "--log-every", "20"])
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
        sys.exit(code)
    """)
    result = run_without_torch(script)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "in NumPy" in result.stdout and "epoch 3 done: evaluation loss" in result.stdout
    rows = list(csv.DictReader(open(curve_path(output))))
    evals = [float(r["loss"]) for r in rows if r["kind"] == "eval"]
    trains = [float(r["loss"]) for r in rows if r["kind"] == "train"]
    assert len(evals) == 3 and evals[-1] < evals[0] < np.log(len(VOCAB))
    assert trains[-1] < 0.5 * np.log(len(VOCAB))
    model = numpy_ref.load(output)
    assert model.vocab == VOCAB and model.config.d_model == 16 and model.config.n_layers == 1
    assert np.isfinite(model(np.array([[1, 2, 3]]))).all()


def test_init_follows_spec():
    params = init_params(ModelConfig(vocab_size=50), seed=0, dtype="float32")
    assert params["embed.weight"].std() == pytest.approx(0.005, rel=0.05)
    assert params["pos_encoding"].std() == pytest.approx(0.005, rel=0.05)
    assert np.all(params["layers.0.norm1.weight"] == 1) and np.all(params["layers.0.norm1.bias"] == 0)
    bound = 1 / np.sqrt(256)  # linear2's fan-in is d_ff
    assert np.abs(params["layers.1.feed_forward.linear2.weight"]).max() <= bound
    assert np.abs(params["layers.1.feed_forward.linear2.bias"]).max() <= bound
    assert params["layers.1.feed_forward.linear2.bias"].std() > bound / 3
    assert {p.dtype for p in params.values()} == {np.dtype(np.float32)}
