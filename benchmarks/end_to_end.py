"""Whole jobs, timed: verify of the shipped checkpoint, generating 64 words with and without the
KV cache, and the test suite.

    .venv/bin/python benchmarks/end_to_end.py [--skip-tests]

Every job runs in a fresh process; its wall time and peak resident memory (wait4's ru_maxrss)
are reported. Generation is also timed inside one process (median of 20 runs) to show the
KV cache's own speed-up without process start-up: 64 words greedily (the notebook's
unpadded mode) from a one-word prompt, so the context grows from 1 to 64 tokens and never
slides (past max_seq_len the cache would be rebuilt at every step).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHECKPOINT = ROOT / "data" / "rpg_model.safetensors"


def timed(command: list[str]) -> tuple[float, float, int]:
    """(seconds, peak GiB, exit code) of one command in a fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 2**20, os.waitstatus_to_exitcode(status)


def generation_in_process() -> tuple[float, float]:
    import numpy_ref
    from numpy_ref.generate import generate
    from numpy_ref.kv_cache import CachedLogits

    model = numpy_ref.load(CHECKPOINT)
    prompt = model.encode("c").ids
    config, vocab = model.config, model.vocab

    def run(logits_fn):
        return generate(logits_fn, config, vocab, prompt, 64, "notebook").ids

    assert run(model) == run(CachedLogits(model))  # the same words either way
    times = {"recompute": [], "cache": []}
    for _ in range(20):
        for name in times:
            started = time.perf_counter()
            run(model if name == "recompute" else CachedLogits(model))
            times[name].append(time.perf_counter() - started)
    return statistics.median(times["recompute"]), statistics.median(times["cache"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    cli = str(BIN / "numpy-ref")
    print(f"load average before: {os.getloadavg()[0]:.2f}\n")
    print("| job | wall time | peak memory |")
    print("| --- | --- | --- |")
    jobs = [
        ("verify the shipped checkpoint, float32 and float64", [cli, "verify", str(CHECKPOINT), "--dtype", "float32", "--dtype", "float64"]),
        ("generate 64 words, recompute (`--mode notebook`)", [cli, "generate", "--prompt", "c", "--steps", "64", "--mode", "notebook"]),
        ("generate 64 words, KV cache (`--mode notebook --kv-cache`)", [cli, "generate", "--prompt", "c", "--steps", "64", "--mode", "notebook", "--kv-cache"]),
    ]
    if not args.skip_tests:
        jobs.append(("the whole test suite (`python -m pytest -q`)", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]))
    for label, command in jobs:
        seconds, peak, code = timed(command)
        print(f"| {label} | {seconds:.2f} s | {peak * 1024:.0f} MiB |" + ("" if code == 0 else f" (exit {code})"), flush=True)
    recompute, cache = generation_in_process()
    print(f"\n64 words in one process (median of 20): recompute {recompute * 1e3:.1f} ms, KV cache {cache * 1e3:.1f} ms: "
          f"{recompute / cache:.1f}x faster")


if __name__ == "__main__":
    main()
