"""Forward-pass speed, side by side: the NumPy reference, the NumPy fast path, the PyTorch model
in eager mode and PyTorch's stock layers, on the same weights in one process.

    .venv/bin/python benchmarks/forward.py                 # threads pinned to 1, then the default
    .venv/bin/python benchmarks/forward.py --threads 1     # one setting only

The shipped checkpoint's config (SPEC's defaults, vocab 589); (B, S) = (1, 5), (1, 64),
(32, 64); float32 and float64. Each measurement is the median of many calls, taken round-robin
(one call of each implementation in turn), so a slow moment of the machine hits all of them
alike. "Threads 1" sets OMP/OpenBLAS/MKL threads to 1 in the environment of a fresh process
and torch.set_num_threads(1); "default" leaves both libraries their own choice. Peak memory is
the process's resident high-water mark (wait4's ru_maxrss).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAPES = [(1, 5), (1, 64), (32, 64)]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def child(threads: str, checkpoint: str) -> None:
    import numpy as np
    import torch

    import numpy_ref
    from numpy_ref.fast import FastModel
    from torch_model import Decoder, StockDecoder

    if threads == "1":
        torch.set_num_threads(1)
    loaded = numpy_ref.load_checkpoint(checkpoint)
    config = loaded.config
    print(f"threads: {threads} (torch {torch.get_num_threads()}); numpy {np.__version__}, torch {torch.__version__}")
    print("| dtype | B x S | NumPy reference | NumPy fast path | PyTorch eager | PyTorch stock layers | reference / eager | fast / eager |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for dtype in ("float32", "float64"):
        reference = numpy_ref.Model.from_checkpoint(loaded, dtype)
        fast = FastModel(reference)
        eager = Decoder.from_params(config, loaded.params, getattr(torch, dtype))
        stock = StockDecoder.from_params(config, loaded.params, getattr(torch, dtype))
        for batch, seq_len in SHAPES:
            ids = np.random.default_rng(0).integers(0, config.vocab_size, size=(batch, seq_len))
            tensor_ids = torch.from_numpy(ids)
            calls = {
                "reference": lambda: reference(ids),
                "fast": lambda: fast(ids),
                "eager": lambda: eager(tensor_ids),
                "stock": lambda: stock(tensor_ids),
            }
            runs = 40 if batch > 1 else 400
            times = {name: [] for name in calls}
            with torch.no_grad():
                for _ in range(5):
                    for call in calls.values():
                        call()
                for _ in range(runs):
                    for name, call in calls.items():
                        started = time.perf_counter()
                        call()
                        times[name].append(time.perf_counter() - started)
            median = {name: statistics.median(values) * 1e3 for name, values in times.items()}
            print(f"| {dtype} | {batch} x {seq_len} | {median['reference']:.3f} ms | {median['fast']:.3f} ms | "
                  f"{median['eager']:.3f} ms | {median['stock']:.3f} ms | {median['reference'] / median['eager']:.2f} | "
                  f"{median['fast'] / median['eager']:.2f} |", flush=True)


def run_child(threads: str, checkpoint: str) -> None:
    env = dict(os.environ)
    if threads == "1":
        env.update(ONE_THREAD)
    process = subprocess.Popen([sys.executable, __file__, "--child", "--threads", threads, "--checkpoint", checkpoint],
                               env=env, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    print(f"peak memory of this process: {usage.ru_maxrss / 1024:.0f} MiB\n", flush=True)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the benchmark process failed")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", choices=["1", "default"], action="append")
    parser.add_argument("--checkpoint", default=str(ROOT / "data" / "rpg_model.safetensors"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.threads[0], args.checkpoint)
        return
    print(f"load average before: {os.getloadavg()[0]:.2f}\n")
    for threads in args.threads or ["1", "default"]:
        run_child(threads, args.checkpoint)


if __name__ == "__main__":
    main()
