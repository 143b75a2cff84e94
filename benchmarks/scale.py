"""Scale: verify a GPT-2-small-sized model, and how its time and peak memory grow.

    .venv/bin/python benchmarks/scale.py                      # the whole table (about 10 min)
    .venv/bin/python benchmarks/scale.py --points 1024:12     # one point: S = 1024, 12 layers

Config (GPT-2 small's sizes): vocab 50,000, d_model 768, 12 heads, d_ff 3072, max_seq_len
1024, seeded random weights written to safetensors under build/scale/ (once). Each point runs
`numpy-ref verify CHECKPOINT --shape 1xS --dtype float32` in a fresh process, which loads the
checkpoint into the NumPy reference, the PyTorch model, the stock layers and (for the float32
noise term) the PyTorch model in float64, runs all four on one input and compares every
intermediate as it goes. Wall time and the process's peak resident memory (wait4's ru_maxrss)
are reported, with the size one full trace of one implementation would take, for scale.
"""

import argparse
import os
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GPT2 = dict(vocab_size=50000, d_model=768, n_heads=12, d_ff=3072, max_seq_len=1024)
DEFAULT_POINTS = ["256:12", "512:12", "1024:12", "1024:3", "1024:6"]


def checkpoint_for(layers: int) -> Path:
    path = ROOT / "build" / "scale" / f"gpt2_small_{layers}_layers.safetensors"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        args = [str(BIN / "numpy-ref"), "init-random", "-o", str(path), "--seed", "0", "--n-layers", str(layers)]
        for name, value in GPT2.items():
            args += ["--" + name.replace("_", "-"), str(value)]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return path


def trace_bytes(seq_len: int, layers: int, itemsize: int = 4) -> int:
    """The bytes of every intermediate of one forward at B = 1 (what holding a whole trace costs)."""
    E, H, F, V, S = GPT2["d_model"], GPT2["n_heads"], GPT2["d_ff"], GPT2["vocab_size"], seq_len
    # per block: q k v, their heads, context, context_merged, out, residual1, norm1,
    # feed_forward.out, residual2, norm2 (14 of [S, E]); 4 score tensors [H, S, S]; the mask
    # [S, S]; hidden_pre and hidden [S, F]
    per_block = 14 * S * E + 4 * H * S * S + S * S + 2 * S * F
    return itemsize * (3 * S * E + layers * per_block + S * V)  # + embed.* and logits


def measure(seq_len: int, layers: int) -> dict:
    path = checkpoint_for(layers)
    command = [str(BIN / "numpy-ref"), "verify", str(path), "--shape", f"1x{seq_len}", "--dtype", "float32", "--json"]
    with tempfile.TemporaryFile("w+") as report:  # a file, not a pipe: the report is larger than a pipe holds
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=report, stderr=subprocess.DEVNULL, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        report.seek(0)
        ok = json.load(report)["ok"]
    return {"S": seq_len, "layers": layers, "seconds": seconds, "peak_gib": usage.ru_maxrss / 2**20,
            "ok": ok and os.waitstatus_to_exitcode(status) == 0, "trace_gib": trace_bytes(seq_len, layers) / 2**30}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", nargs="+", default=DEFAULT_POINTS, help="S:layers pairs")
    args = parser.parse_args()
    print("| S | layers | verify wall time | peak memory | verdict | one full float32 trace would be |")
    print("| --- | --- | --- | --- | --- | --- |")
    for point in args.points:
        seq_len, layers = (int(x) for x in point.split(":"))
        row = measure(seq_len, layers)
        print(f"| {row['S']} | {row['layers']} | {row['seconds']:.1f} s | {row['peak_gib']:.2f} GiB | "
              f"{'OK' if row['ok'] else 'MISMATCH or error'} | {row['trace_gib']:.2f} GiB |", flush=True)


if __name__ == "__main__":
    main()
