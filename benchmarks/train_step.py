"""How long one training step takes in NumPy (numpy_ref.train.train_step: forward with
trace, backward, clipping, Adam) next to PyTorch's (torch_model.train.train_step), and
whether the two trainers give the same loss curve.

    .venv/bin/python benchmarks/train_step.py                    # timing, float32, B=4, S=64
    .venv/bin/python benchmarks/train_step.py --curve            # and the 50-step loss curves, both dtypes
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/train_step.py   # NumPy on one BLAS thread

Timing: SPEC's default config (vocabulary --vocab-size, default 589 as the shipped corpus),
seeded init, batches cut from a seeded random id stream; --warm-up steps first, then the
median (and quartiles) over --steps steps, for NumPy, PyTorch with one thread and PyTorch
with its default thread count. NumPy's step is also split into its parts (forward with
trace, backward, clipping + Adam). The load average is printed: on a shared machine, read
the numbers next to it.

Curve (--curve): both trainers from the same initial weights on the same batches with
SPEC's recipe (lr 3e-4, warm-up 200, clip 0.5, Adam eps 1e-37), --curve-steps steps, in
float64 and float32, and again with lr 3e-3 and warm-up 10 (so that the loss moves more in
few steps); prints the largest relative difference of the per-step losses.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from numpy_ref.backward import backward, check_targets  # noqa: E402
from numpy_ref.config import ModelConfig  # noqa: E402
from numpy_ref.data import batch  # noqa: E402
from numpy_ref.forward import forward  # noqa: E402
from numpy_ref.optim import Adam, clip_gradients, learning_rate  # noqa: E402
from numpy_ref.train import TrainSettings, init_params, train_step  # noqa: E402
from torch_model.model import Decoder  # noqa: E402
from torch_model.train import make_optimizer  # noqa: E402
from torch_model.train import train_step as torch_train_step  # noqa: E402

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _quartiles(times: list[float]) -> str:
    q1, median, q3 = np.percentile(np.array(times) * 1e3, [25, 50, 75])
    return f"{median:7.2f} ms  (quartiles {q1:.2f} .. {q3:.2f})"


def time_steps(config, stream, steps: int, warm_up: int, batch_size: int, seq_len: int, dtype: str):
    settings = TrainSettings()
    total = warm_up + steps
    results = {}

    params = init_params(config, seed=0, dtype=dtype)
    adam = Adam(params, eps=settings.adam_eps)
    times, parts = [], {"forward with trace": [], "backward": [], "clip + Adam": []}
    for step in range(total):
        inputs, targets = batch(stream, step, batch_size, seq_len)
        lr = learning_rate(step, settings.lr, settings.warmup_steps)
        start = time.perf_counter()
        train_step(params, adam, config, inputs, targets, lr, settings.clip_norm)
        elapsed = time.perf_counter() - start
        if step >= warm_up:
            times.append(elapsed)
            # the same batch once more, timed in its parts (the optimiser works on a copy, so the
            # run above is untouched)
            trace = {}
            t0 = time.perf_counter()
            forward(params, config, inputs, trace)
            t1 = time.perf_counter()
            grads, _ = backward(params, config, inputs, check_targets(config, inputs, targets), trace)
            t2 = time.perf_counter()
            scratch_adam, scratch_params = copy.deepcopy(adam), dict(params)
            t3 = time.perf_counter()
            clipped, _ = clip_gradients(grads, settings.clip_norm)
            scratch_adam.step(scratch_params, clipped, lr)
            t4 = time.perf_counter()
            parts["forward with trace"].append(t1 - t0)
            parts["backward"].append(t2 - t1)
            parts["clip + Adam"].append(t4 - t3)
    results["numpy"] = (times, parts)

    for label, threads in (("torch, 1 thread", 1), (f"torch, default ({torch.get_num_threads()} threads)", None)):
        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            model = Decoder.from_params(config, init_params(config, seed=0, dtype=dtype), TORCH_DTYPES[dtype]).train()
            optimizer = make_optimizer(model, settings)
            times = []
            for step in range(total):
                inputs, targets = batch(stream, step, batch_size, seq_len)
                lr = learning_rate(step, settings.lr, settings.warmup_steps)
                start = time.perf_counter()
                torch_train_step(model, optimizer, inputs, targets, lr, settings.clip_norm)
                if step >= warm_up:
                    times.append(time.perf_counter() - start)
        finally:
            torch.set_num_threads(before)
        results[label] = (times, None)
    return results


def loss_curves(config, stream, steps: int, batch_size: int, seq_len: int, dtype: str, settings: TrainSettings):
    """(NumPy losses, torch losses) from the same initial weights on the same batches."""
    params = init_params(config, seed=1, dtype=dtype)
    model = Decoder.from_params(config, params, TORCH_DTYPES[dtype]).train()
    optimizer = make_optimizer(model, settings)
    adam = Adam(params, betas=settings.betas, eps=settings.adam_eps)
    ours, theirs = [], []
    for step in range(steps):
        inputs, targets = batch(stream, step, batch_size, seq_len)
        lr = learning_rate(step, settings.lr, settings.warmup_steps)
        ours.append(train_step(params, adam, config, inputs, targets, lr, settings.clip_norm)[0])
        theirs.append(torch_train_step(model, optimizer, inputs, targets, lr, settings.clip_norm)[0])
    return np.array(ours), np.array(theirs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-size", type=int, default=589)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warm-up", type=int, default=5)
    parser.add_argument("--dtype", choices=sorted(TORCH_DTYPES), default="float32")
    parser.add_argument("--curve", action="store_true", help="also compare the loss curves (float64 and float32)")
    parser.add_argument("--curve-steps", type=int, default=50)
    args = parser.parse_args(argv)

    config = ModelConfig(vocab_size=args.vocab_size)
    rng = np.random.default_rng(0)
    stream = rng.integers(0, config.vocab_size, size=(args.steps + args.warm_up + 1) * args.batch_size * (args.seq_len + 1))
    stream[rng.choice(stream.size, size=stream.size // 50, replace=False)] = config.pad_id  # some pad targets

    print(f"config: {config}")
    print(f"batch B={args.batch_size}, S={args.seq_len}, {args.dtype}; {args.steps} timed steps after {args.warm_up}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (on {os.cpu_count()} cores)")
    results = time_steps(config, stream, args.steps, args.warm_up, args.batch_size, args.seq_len, args.dtype)
    numpy_median = statistics.median(results["numpy"][0])
    for label, (times, parts) in results.items():
        ratio = statistics.median(times) / numpy_median
        print(f"  {label:32s} {_quartiles(times)}   {ratio:.2f} x NumPy")
        for part, part_times in (parts or {}).items():
            print(f"      {part:28s} {_quartiles(part_times)}")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")

    if args.curve:
        print()
        print(f"loss curves, {args.curve_steps} steps from the same weights on the same batches:")
        for recipe, settings in (("SPEC (lr 3e-4, warm-up 200)", TrainSettings()),
                                 ("lr 3e-3, warm-up 10", TrainSettings(lr=3e-3, warmup_steps=10))):
            for dtype in ("float64", "float32"):
                ours, theirs = loss_curves(config, stream, args.curve_steps, args.batch_size, args.seq_len, dtype, settings)
                relative = np.abs(ours - theirs) / np.abs(theirs)
                print(f"  {recipe:28s} {dtype}: loss {theirs[0]:.6f} -> {theirs[-1]:.6f}; max relative difference "
                      f"per step {relative.max():.2e} (step {int(relative.argmax())}), median {np.median(relative):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
