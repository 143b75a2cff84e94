"""How close correct gradients come to the gradient tolerance: gradient parity (NumPy
backward against autograd) on many random configs.

    .venv/bin/python benchmarks/grad_tolerance_sweep.py --configs 60 --seed 5
    .venv/bin/python benchmarks/grad_tolerance_sweep.py --configs 60 --seed 5 --fixed   # float32 1e-4 alone

For each drawn config (1 to 3 layers, 1 to 8 heads of width 1 to 16, d_ff 1 to 299,
max_seq_len 1 to 64), at the seeded weights' scale and at SPEC's init scale of the
embeddings, and in each dtype, it runs default_grad_cases and reports the largest error
as a fraction of its tolerance (above 1 fails) and every failure.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import random_checkpoint  # noqa: E402
from tolerance_sweep import draw_config  # noqa: E402
from torch_model.grad_parity import default_grad_cases, run_grad_parity  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--fixed", action="store_true", help="float32 without the measured-noise term")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    worst, failures, runs = {}, [], 0
    for i in range(args.configs):
        config = draw_config(rng)
        for spec_init_scale in (False, True):
            checkpoint = random_checkpoint(config, i, spec_init_scale=spec_init_scale)
            for dtype in ("float32", "float64"):
                report = run_grad_parity(checkpoint, dtype, default_grad_cases(config, i), measure_noise=not args.fixed)
                runs += 1
                for row in report.rows:
                    fraction = float("inf") if row.max_rel is None else row.max_rel / row.tol
                    if fraction > worst.get(dtype, (0,))[0]:
                        worst[dtype] = (fraction, row.name, row.max_rel, row.tol, spec_init_scale, config)
                if not report.ok:
                    first = report.first_mismatch
                    failures.append((dtype, spec_init_scale, first.name, first.max_rel, first.tol, config))
    print(f"{runs} runs ({args.configs} configs x 2 scales x 2 dtypes){', float32 without the noise term' if args.fixed else ''}")
    for dtype, (fraction, name, max_rel, tol, spec, config) in sorted(worst.items()):
        print(f"{dtype}: largest error {fraction:.3f} of its tolerance ({max_rel:.2e} / {tol:.2e}) at {name}; "
              f"{'SPEC init scale' if spec else 'seeded scale'}; {config}")
    print(f"{len(failures)} failing run(s)")
    for failure in failures:
        print("  ", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
