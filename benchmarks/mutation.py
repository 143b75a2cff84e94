"""Does the parity suite have teeth? Deliberate single-point bugs (mutants) in a copy
of the NumPy forward, each run through torch_model.parity.run_parity against the
unchanged PyTorch model, in float32 and float64; and in a copy of the NumPy backward
(the grad_* mutants), each run through torch_model.grad_parity.run_grad_parity
against autograd.

    .venv/bin/python benchmarks/mutation.py                      # SPEC default config, seeded weights
    .venv/bin/python benchmarks/mutation.py --markdown           # the table in Markdown (README)
    .venv/bin/python benchmarks/mutation.py --checkpoint data/rpg_model.safetensors

For each mutant: where its bug lives (the trace name the first mismatch must name),
whether float32 and float64 catch it and where, whether that is the right place,
and its effect: the relative change it causes at its own intermediate, measured in
float64 (max |mutant - reference| / max |reference| over the inputs). The mutants
and the goal are defined in benchmarks/mutants.py. Exits 1 if any mutant misses the
goal without a written argument that holds (or if the control, the unmutated
source compiled the same way, does not pass), 2 if a mutant no longer applies.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from conftest import random_checkpoint  # noqa: E402
from mutants import MUTANTS, MutantError, Runner, at_spec_init_scale, check_sites  # noqa: E402
from numpy_ref.checkpoint import load_checkpoint  # noqa: E402
from numpy_ref.config import ModelConfig  # noqa: E402
from torch_model.grad_parity import default_grad_cases  # noqa: E402
from torch_model.parity import default_cases  # noqa: E402

HEADER = ("mutant", "where the bug lives", "float32: caught (first mismatch)", "float64: caught (first mismatch)",
          "localized f32 / f64", "effect at site (f64)", "f32 tol at site", "logits alone catch it (f32 / f64)", "verdict")


def _caught(run) -> str:
    return f"yes ({run.first})" if run.caught else "no"


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _effect(value: float) -> str:
    return "non-finite" if value == float("inf") else f"{value:.1e}"


def _verdict(result) -> str:
    mutant = result.mutant
    if not result.ok:
        return "; ".join(f"{dtype} {text}" for dtype, text in result.verdicts.items() if not text.startswith("ok"))
    if mutant.equivalent:
        return "ok (equivalent: not caught, as it must not be)"
    argued = result.verdicts["float32"]
    if argued.startswith("ok: argued"):
        return "ok (f32: below resolution, argued)"
    return "ok"


def rows(results) -> list[tuple]:
    table = []
    for r in results:
        m, f32, f64 = r.mutant, r.runs["float32"], r.runs["float64"]
        localized = "-" if m.equivalent else f"{_yes_no(r.localized('float32'))} / {_yes_no(r.localized('float64'))}"
        table.append((m.name + (" *" if m.own else ""), m.site, _caught(f32), _caught(f64), localized,
                      _effect(r.effect), "exact" if f32.tol_at_site == 0 else f"{f32.tol_at_site:.1e}",
                      f"{_yes_no(f32.logits_caught)} / {_yes_no(f64.logits_caught)}", _verdict(r)))
    return table


def plain(table) -> str:
    widths = [max(len(str(line[i])) for line in [HEADER, *table]) for i in range(len(HEADER))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in [HEADER, *table])


def markdown(table) -> str:
    def esc(cell):
        return str(cell).replace("|", "\\|")
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    def name(cell):
        own = cell.endswith(" *")
        return f"`{cell.removesuffix(' *')}`" + (" \\*" if own else "")
    lines += ["| " + " | ".join(name(c) if i == 0 else esc(c) for i, c in enumerate(line)) + " |" for line in table]
    return "\n".join(lines)


def notes(results, md: bool) -> str:
    bullet = "- " if md else "  "
    code = (lambda s: f"`{s}`") if md else (lambda s: s)
    out = ["", "Why each site (the first intermediate the bug changes; for a backward mutant, grad_*, the first "
                "gradient counted from the loss):"]
    out += [f"{bullet}{code(r.mutant.name)} ({r.mutant.description}): {r.mutant.why}." for r in results]
    # An argument is shown only where it is used: the mutant was not caught.
    argued = [r for r in results
              if (r.mutant.equivalent and not r.runs["float64"].caught)
              or (r.mutant.float32 and not r.runs["float32"].caught)]
    if argued:
        out += ["", "Arguments:"]
        for r in argued:
            kind = "equivalent" if r.mutant.equivalent else "below float32 resolution"
            out.append(f"{bullet}{code(r.mutant.name)} ({kind}; effect at {r.mutant.site} {_effect(r.effect)}, "
                       f"float32 tolerance there {r.runs['float32'].tol_at_site:.1e}): "
                       f"{r.mutant.equivalent or r.mutant.float32}")
    out += ["", ("\\* " if md else "* ") + "added beyond the brief's list. Effect: the relative change the mutant causes at its own "
                "intermediate, in float64. 'logits alone': whether comparing only the logits would have caught it; "
                "for a backward mutant, whether comparing only the parameters' gradients would have."]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="a canonical safetensors checkpoint (default: seeded random weights)")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    parser.add_argument("--seed", type=int, default=7, help="seed of the random weights (default 7)")
    parser.add_argument("--cases-seed", type=int, default=3, help="seed of default_cases (default 3)")
    parser.add_argument("--spec-init-scale", action="store_true",
                        help="rescale embed.weight and pos_encoding to SPEC's init std 0.005 (LayerNorm's eps then "
                             "shows in float32)")
    parser.add_argument("--only", nargs="*", help="run only these mutants")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the tensors are tiny, and on a busy 2-core machine "
                             "two threads are 3x slower)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.checkpoint is not None:
        checkpoint, label = load_checkpoint(args.checkpoint), str(args.checkpoint)
    else:
        checkpoint = random_checkpoint(ModelConfig(vocab_size=64), seed=args.seed)
        label = f"random_checkpoint(ModelConfig(vocab_size=64), seed={args.seed})"
    if args.spec_init_scale:
        checkpoint, label = at_spec_init_scale(checkpoint), label + ", embed and pos rescaled to std 0.005"
    config = checkpoint.config
    cases = default_cases(config, seed=args.cases_seed)
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.only and len(mutants) != len(set(args.only)):
        parser.error(f"unknown mutant(s): {sorted(set(args.only) - {m.name for m in mutants})}")

    start = time.perf_counter()
    try:
        check_sites(config)
    except MutantError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    grad_cases = default_grad_cases(config, seed=args.cases_seed)
    runner = Runner(checkpoint, cases, grad_cases)
    control = runner.control()
    control_backward = runner.control_backward()
    results = [runner.run(m) for m in mutants]
    elapsed = time.perf_counter() - start

    print(f"checkpoint: {label}")
    print("inputs: default_cases(seed=%d): %s" % (args.cases_seed, "; ".join(f"{c.name} {list(c.ids.shape)}" for c in cases)))
    print("gradient inputs: default_grad_cases(seed=%d): %s" % (
        args.cases_seed, "; ".join(f"{c.name} {list(c.ids.shape)}" for c in grad_cases)))
    print("control (forward.py compiled unmutated): " + ", ".join(f"{d} {'OK' if r.ok else 'MISMATCH'}" for d, r in control.items()))
    print("control (backward.py compiled unmutated, gradients): "
          + ", ".join(f"{d} {'OK' if r.ok else 'MISMATCH'}" for d, r in control_backward.items()))
    print()
    table = rows(results)
    print(markdown(table) if args.markdown else plain(table))
    print(notes(results, args.markdown))
    failed = [r.mutant.name for r in results if not r.ok]
    print()
    print(f"{len(results)} mutants, {sum(r.runs['float64'].caught for r in results)} caught in float64, "
          f"{sum(r.runs['float32'].caught for r in results)} in float32; {len(failed)} miss the goal"
          + (f": {', '.join(failed)}" if failed else "") + f"; {elapsed:.1f} s")
    control_ok = all(r.ok for r in [*control.values(), *control_backward.values()])
    if not control_ok:
        print("error: the unmutated control does not pass parity: the results above mean nothing", file=sys.stderr)
    return 0 if control_ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
