"""How close correct code comes to the tolerance: parity on many random configs.

    .venv/bin/python benchmarks/tolerance_sweep.py --configs 150 --seed 5
    .venv/bin/python benchmarks/tolerance_sweep.py --configs 60 --seed 1 --fixed   # 1e-5 alone

For each drawn config (1 to 3 layers, 1 to 8 heads of width 1 to 16, d_ff 1 to 299,
max_seq_len 1 to 64) and each dtype it runs verify's three default inputs on seeded
random weights and reports the largest error as a fraction of its tolerance (above 1
fails) and every failure.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import random_checkpoint  # noqa: E402
from numpy_ref.config import ModelConfig  # noqa: E402
from torch_model.parity import default_cases, run_parity  # noqa: E402


def draw_config(rng) -> ModelConfig:
    """A random valid config: 1 to 3 layers, 1 to 8 heads of width 1 to 16, d_ff 1 to 299,
    max_seq_len 1 to 64, vocabulary 2 to 79 (the same draw for both sweeps)."""
    heads = int(rng.choice([1, 2, 4, 8]))
    return ModelConfig(
        vocab_size=int(rng.integers(2, 80)), d_model=heads * int(rng.integers(1, 17)), n_heads=heads,
        d_ff=int(rng.integers(1, 300)), n_layers=int(rng.integers(1, 4)), max_seq_len=int(rng.integers(1, 65)),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixed", action="store_true", help="float32 without the measured-noise term")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    worst, failures = {}, []
    for i in range(args.configs):
        config = draw_config(rng)
        for dtype in ("float32", "float64"):
            report = run_parity(random_checkpoint(config, i), dtype, default_cases(config, i), measure_noise=not args.fixed)
            for row in report.rows:
                if not row.ok:
                    failures.append((dtype, config, row.name, row.max_rel))
                    break
            row = max((r for r in report.rows if r.tol > 0 and r.max_rel is not None), key=lambda r: r.max_rel / r.tol)
            if dtype not in worst or row.max_rel / row.tol > worst[dtype][0]:
                worst[dtype] = (row.max_rel / row.tol, row.name, row.against, config)
    print(f"{args.configs} configs, seed {args.seed}, float32 policy: {'fixed 1e-5' if args.fixed else 'max(1e-5, 8 x noise)'}")
    for dtype, (fraction, name, against, config) in worst.items():
        print(f"{dtype}: largest error {fraction:.3f} of its tolerance, at {name} vs {against}, d_model {config.d_model}, "
              f"{config.n_layers} layers")
    print(f"failures: {len(failures)}")
    for dtype, config, name, rel in failures:
        print(f"  {dtype} d_model {config.d_model} layers {config.n_layers}: first at {name}, relative error {rel:.2e}")


if __name__ == "__main__":
    main()
