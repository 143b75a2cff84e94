"""Shared fixtures. `pytest --checkpoint PATH [--vocab-from TRAIN EVAL] [--vocab FILE]
[--heads N] [--model-config FILE]` runs the checkpoint tests on PATH, in any format that
conversion reads, instead of the shipped checkpoint (or, where none ships, seeded random
weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from numpy_ref.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from numpy_ref.config import ModelConfig
from numpy_ref.random_init import random_params, random_vocab

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CHECKPOINT = ROOT / "data" / "rpg_model.safetensors"


def pytest_addoption(parser):
    group = parser.getgroup("checkpoint under test")
    group.addoption("--checkpoint", default=None,
                    help="run the checkpoint tests on this file (safetensors, the original's libtorch archive, .pt)")
    group.addoption("--vocab-from", nargs=2, default=None, metavar=("TRAIN", "EVAL"),
                    help="rebuild its vocabulary from these tokenized files")
    group.addoption("--vocab", default=None, dest="vocab_file", metavar="FILE", help="its vocabulary file")
    group.addoption("--heads", type=int, default=None, help="its number of heads, where the file does not say")
    group.addoption("--model-config", default=None, metavar="FILE", help="its config (JSON), where the file does not say")


def random_checkpoint(config: ModelConfig, seed: int = 0, spec_init_scale: bool = False) -> Checkpoint:
    """Seeded random weights. With spec_init_scale, embed and pos have SPEC's init scale,
    N(0, 1) * 0.005, instead of 1 and 0.5: the residual stream entering the first LayerNorm
    then has a variance near 0.01, where LayerNorm's eps matters even in float32."""
    params = random_params(config, seed)
    if spec_init_scale:
        for name in ("embed.weight", "pos_encoding"):
            params[name] = (params[name] * (0.005 / params[name].std())).astype(np.float32)
    return Checkpoint(config, random_vocab(config.vocab_size), params)


@pytest.fixture(scope="session")
def checkpoint_path(request, tmp_path_factory) -> Path:
    """The checkpoint under test: --checkpoint, else the shipped one, else seeded random weights."""
    given = request.config.getoption("--checkpoint")
    if given:
        return Path(given)
    if SHIPPED_CHECKPOINT.exists():
        return SHIPPED_CHECKPOINT
    path = tmp_path_factory.mktemp("checkpoint") / "random_model.safetensors"
    checkpoint = random_checkpoint(ModelConfig(vocab_size=64), seed=0)
    save_checkpoint(path, checkpoint.params, checkpoint.config, checkpoint.vocab)
    return path


@pytest.fixture(scope="session")
def checkpoint(request, checkpoint_path) -> Checkpoint:
    options = request.config.option
    if not options.checkpoint:
        return load_checkpoint(checkpoint_path)
    from conversion.load import load_any

    loaded, notes = load_any(checkpoint_path, heads=options.heads, vocab_from=options.vocab_from,
                             vocab_file=options.vocab_file, config_file=options.model_config)
    return loaded


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


TORCH_BLOCKER = '''
import sys

class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")

sys.meta_path.insert(0, BlockTorch())
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("the blocker did not work")
'''


def run_without_torch(script: str):
    """Run `script` (Python source) in a fresh interpreter in which importing torch fails;
    it also fails the run if anything imported torch after all."""
    import subprocess
    import sys
    import textwrap

    check = '\nassert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"\n'
    return subprocess.run([sys.executable, "-c", TORCH_BLOCKER + textwrap.dedent(script) + check],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: on a busy 2-core machine one torch thread is about 3x faster than two.
    Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
