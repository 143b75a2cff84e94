"""SPEC's training recipe: batching, warm-up, clipping, loss, resume, and a short real run."""

import csv

import numpy as np
import pytest
import torch

import numpy_ref
from numpy_ref.config import ModelConfig
from numpy_ref.data import batch, batches_per_epoch, encode_words
from numpy_ref.vocab import build_vocabulary, words_of_text
from numpy_ref_cli.main import main
from torch_model.parity import default_cases, run_parity
from numpy_ref.optim import learning_rate
from torch_model.train import TrainSettings, clip_gradients, curve_path, loss_fn, state_path, train


def test_batches_are_consecutive_chunks_of_b_times_s_plus_1():
    ids = np.arange(100, 123)  # 23 ids; B = 2, S = 3 -> chunks of 8
    assert batches_per_epoch(23, 2, 3) == 3
    inputs, targets = batch(ids, 0, 2, 3)
    np.testing.assert_array_equal(inputs, [[100, 101, 102], [104, 105, 106]])
    np.testing.assert_array_equal(targets, [[101, 102, 103], [105, 106, 107]])
    inputs, targets = batch(ids, 1, 2, 3)
    np.testing.assert_array_equal(inputs, [[108, 109, 110], [112, 113, 114]])
    # the last chunk is ids 16..22 and then cycles to the start: 100
    inputs, targets = batch(ids, 2, 2, 3)
    np.testing.assert_array_equal(inputs, [[116, 117, 118], [120, 121, 122]])
    np.testing.assert_array_equal(targets, [[117, 118, 119], [121, 122, 100]])


def test_warm_up_counts_steps_from_zero():
    assert learning_rate(0, 3e-4, 200) == pytest.approx(3e-4 / 200)
    assert learning_rate(99, 3e-4, 200) == pytest.approx(3e-4 * 100 / 200)
    assert learning_rate(199, 3e-4, 200) == pytest.approx(3e-4)
    assert learning_rate(5000, 3e-4, 200) == 3e-4


def test_global_norm_clipping():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])  # global norm 5
    assert clip_gradients([a, b], 0.5) == pytest.approx(5.0)
    scale = 0.5 / (5.0 + 1e-6)
    torch.testing.assert_close(a.grad, torch.tensor([3.0 * scale, 0.0]))
    torch.testing.assert_close(b.grad, torch.tensor([4.0 * scale]))
    a.grad, b.grad = torch.tensor([0.3, 0.0]), torch.tensor([0.4])  # norm 0.5: not above, untouched
    clip_gradients([a, b], 0.5)
    torch.testing.assert_close(a.grad, torch.tensor([0.3, 0.0]))


def test_loss_ignores_pad_targets():
    logits = torch.randn(1, 3, 5, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[2, 0, 4]])
    log_probs = torch.log_softmax(logits, -1)[0]
    expected = -(log_probs[0, 2] + log_probs[2, 4]) / 2
    torch.testing.assert_close(loss_fn(logits, targets, pad_id=0), expected)


CORPUS = "\n".join(
    f"c eval {v} = {v} + {n}\nif {v} > {n}\ncallp log{n}\nendif" for v in ("total", "count", "amt") for n in range(12)
) * 6

TINY = ModelConfig(vocab_size=1, d_model=16, n_heads=2, d_ff=32, n_layers=1, max_seq_len=8)


def tiny_run(tmp_path, name, **settings):
    words = words_of_text(CORPUS)
    vocab = build_vocabulary(words, words)
    config = ModelConfig(**{**TINY.to_dict(), "vocab_size": len(vocab)})
    ids = encode_words(words, vocab)
    defaults = dict(epochs=1, batch_size=4, seq_len=8, warmup_steps=5, lr=3e-3, log_every=1000, save_every=1000)
    path = tmp_path / name
    return config, vocab, ids, path, TrainSettings(**{**defaults, **settings})


def test_a_short_run_lowers_the_loss_and_its_checkpoint_verifies(tmp_path):
    config, vocab, ids, path, settings = tiny_run(tmp_path, "tiny.safetensors", epochs=3)
    first_loss = float(np.log(config.vocab_size))  # about the untrained model's loss
    summary = train(config, vocab, ids, ids, settings, path, log=lambda *_: None)
    assert summary["eval_loss"] < 0.5 * first_loss
    rows = list(csv.DictReader(open(curve_path(path))))
    assert [r["kind"] for r in rows].count("eval") == 3
    model = numpy_ref.load(path)
    assert model.vocab == vocab and model.config == config
    checkpoint = numpy_ref.load_checkpoint(path)
    for dtype in ("float32", "float64"):
        assert run_parity(checkpoint, dtype, default_cases(config)).ok


def test_resume_continues_exactly(tmp_path):
    config, vocab, ids, straight, settings = tiny_run(tmp_path, "straight.safetensors", epochs=2)
    train(config, vocab, ids, ids, settings, straight, log=lambda *_: None)
    per_epoch = batches_per_epoch(len(ids), 4, 8)
    _, _, _, resumed, _ = tiny_run(tmp_path, "resumed.safetensors")
    half = TrainSettings(**{**settings.__dict__, "max_steps": per_epoch + 3})  # stop inside epoch 2
    train(config, vocab, ids, ids, half, resumed, log=lambda *_: None)
    assert state_path(resumed).exists()
    train(config, vocab, ids, ids, settings, resumed, resume=True, log=lambda *_: None)
    a, b = numpy_ref.load_checkpoint(straight).params, numpy_ref.load_checkpoint(resumed).params
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_train_cli_refuses_to_overwrite(tmp_path, capsys):
    (tmp_path / "train.txt").write_text(CORPUS)
    out = tmp_path / "model.safetensors"
    out.write_bytes(b"keep me")
    code = main(["train", "--train", str(tmp_path / "train.txt"), "--eval", str(tmp_path / "train.txt"), "-o", str(out)])
    assert code == 2 and out.read_bytes() == b"keep me"
    assert "already exists" in capsys.readouterr().err


def test_ctrl_c_leaves_the_last_saved_checkpoint_whole(tmp_path):
    """SIGINT in the middle of training (the NumPy trainer: both share the loop and its saving):
    exit 130, the checkpoint on disk is a complete earlier
    save that loads, and no temporary file is left behind."""
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "train.txt").write_text(CORPUS * 4)
    out = tmp_path / "model.safetensors"
    command = [sys.executable, "-m", "numpy_ref_cli.main", "train", "--impl", "numpy", "--train", str(tmp_path / "train.txt"),
               "--eval", str(tmp_path / "train.txt"), "-o", str(out), "--epochs", "1000", "--save-every", "5",
               "--d-model", "16", "--n-heads", "2", "--d-ff", "32", "--n-layers", "1", "--max-seq-len", "8",
               "--log-every", "1000000", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the run, between or during saves
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    model = numpy_ref.load(out)
    assert model.config.d_model == 16
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, (leftovers, stderr)
