"""Bad input gets one clear error naming the problem, from the API and from the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
import safetensors.numpy

import numpy_ref
from numpy_ref.checkpoint import load_checkpoint, save_checkpoint
from numpy_ref.config import ModelConfig
from numpy_ref.errors import CheckpointError, ConfigError, InputError
from numpy_ref_cli.main import main

from conftest import random_checkpoint

CONFIG = ModelConfig(vocab_size=20, d_model=16, d_ff=24, max_seq_len=8)


@pytest.fixture(scope="module")
def model():
    return numpy_ref.Model.from_checkpoint(random_checkpoint(CONFIG), "float32")


@pytest.mark.parametrize("ids, words", [
    (np.zeros((1, 9), dtype=int), "9 tokens.*max_seq_len=8"),
    (np.array([[1, 20]]), "token id 20 is outside the vocabulary of 20 words"),
    (np.array([[-1, 2]]), "token id -1"),
    (np.zeros((0, 4), dtype=int), "empty"),
    (np.zeros((2, 0), dtype=int), "empty"),
    (np.array([[1.0, 2.0]]), "integers"),
    (np.array([1, 2]), r"shape \[B, S\]"),
])
def test_bad_ids_are_refused(model, ids, words):
    with pytest.raises(InputError, match=words):
        model(ids)


def test_d_model_not_divisible_by_heads():
    with pytest.raises(ConfigError, match=r"d_model \(30\) must be divisible by n_heads \(4\)"):
        ModelConfig(vocab_size=5, d_model=30)


def write_raw(path, tensors, config=CONFIG, vocab=None, metadata=None):
    if metadata is None:
        vocab = vocab if vocab is not None else [f"w{i}" for i in range(config.vocab_size)]
        metadata = {"config": config.to_json(), "vocab": json.dumps(vocab)}
    safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


@pytest.fixture
def params():
    return dict(random_checkpoint(CONFIG).params)


def test_missing_tensor(tmp_path, params):
    del params["layers.1.norm2.bias"]
    with pytest.raises(CheckpointError, match=r"bad.safetensors.*missing 1 tensor\(s\): layers.1.norm2.bias"):
        load_checkpoint(write_raw(tmp_path / "bad.safetensors", params))


def test_extra_tensor(tmp_path, params):
    params["layers.2.norm2.bias"] = np.zeros(16, np.float32)
    with pytest.raises(CheckpointError, match=r"unexpected 1 tensor\(s\): layers.2.norm2.bias"):
        load_checkpoint(write_raw(tmp_path / "bad.safetensors", params))


def test_misshaped_tensor(tmp_path, params):
    params["layers.0.feed_forward.linear1.weight"] = np.zeros((16, 24), np.float32)
    with pytest.raises(CheckpointError, match=r"'layers.0.feed_forward.linear1.weight' has shape \[16, 24\].*requires \[24, 16\]"):
        load_checkpoint(write_raw(tmp_path / "bad.safetensors", params))


def test_nan_weights_are_named(tmp_path, params):
    params["final_layer.bias"][3] = np.nan
    with pytest.raises(CheckpointError, match=r"'final_layer.bias' holds 1 NaN"):
        load_checkpoint(write_raw(tmp_path / "bad.safetensors", params))


def test_integer_tensor(tmp_path, params):
    params["final_layer.bias"] = np.zeros(20, np.int32)
    with pytest.raises(CheckpointError, match=r"'final_layer.bias' has dtype int32"):
        load_checkpoint(write_raw(tmp_path / "bad.safetensors", params))


def test_vocabulary_of_the_wrong_size(tmp_path, params):
    with pytest.raises(CheckpointError, match=r"19 words but the model has vocab_size=20"):
        load_checkpoint(write_raw(tmp_path / "bad.safetensors", params, vocab=[f"w{i}" for i in range(19)]))


def test_missing_metadata(tmp_path, params):
    with pytest.raises(CheckpointError, match=r"no 'config' entry"):
        load_checkpoint(write_raw(tmp_path / "bad.safetensors", params, metadata={"vocab": "[]"}))


def test_config_with_an_invalid_value(tmp_path, params):
    config = CONFIG.to_dict() | {"n_heads": 3}
    metadata = {"config": json.dumps(config), "vocab": json.dumps([f"w{i}" for i in range(20)])}
    with pytest.raises(CheckpointError, match=r"metadata 'config'.*divisible"):
        load_checkpoint(write_raw(tmp_path / "bad.safetensors", params, metadata=metadata))


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match=r"notes.safetensors: not a readable safetensors file"):
        load_checkpoint(path)


def test_no_such_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"nothing.safetensors: no such file"):
        load_checkpoint(tmp_path / "nothing.safetensors")


def test_save_refuses_to_overwrite_and_leaves_nothing_behind_on_error(tmp_path, params):
    path = tmp_path / "model.safetensors"
    checkpoint = random_checkpoint(CONFIG)
    save_checkpoint(path, params, CONFIG, checkpoint.vocab)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="already exists"):
        save_checkpoint(path, params, CONFIG, checkpoint.vocab, overwrite=False)
    del params["embed.weight"]
    with pytest.raises(CheckpointError):
        save_checkpoint(tmp_path / "other.safetensors", params, CONFIG, checkpoint.vocab)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert path.read_bytes() == before


def test_cli_bad_input_is_one_paragraph_and_exit_2(tmp_path, params):
    del params["pos_encoding"]
    path = write_raw(tmp_path / "bad.safetensors", params)
    result = subprocess.run([sys.executable, "-m", "numpy_ref_cli.main", "verify", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "bad.safetensors" in result.stderr and "pos_encoding" in result.stderr
    assert result.stderr.strip().count("\n\n") == 0


def test_cli_exit_2_for_a_missing_file(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "absent.safetensors")]) == 2
    assert "absent.safetensors: no such file" in " ".join(capsys.readouterr().err.split())


def test_a_closed_pipe_and_an_unwritable_output_are_not_tracebacks(checkpoint_path, tmp_path):
    reader = subprocess.run(
        f"{sys.executable} -m numpy_ref_cli.main info {checkpoint_path} | head -1",
        shell=True, capture_output=True, text=True,
    )
    assert "Traceback" not in reader.stderr and reader.stdout.count("\n") == 1
    # /proc/self is a folder in which nobody, not even root, can create a file
    result = subprocess.run([sys.executable, "-m", "numpy_ref_cli.main", "init-random", "-o", "/proc/self/m.safetensors"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "cannot use" in result.stderr
