"""numpy-ref verify CHECKPOINT: the NumPy reference against PyTorch, intermediate by intermediate."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from numpy_ref.errors import InputError
from numpy_ref.parity import format_report, reports_to_json
from numpy_ref_cli.checkpoint_args import add_checkpoint_arguments, checkpoint_from_args


def register(subparsers):
    parser = subparsers.add_parser(
        "verify",
        help="compare the NumPy reference with PyTorch at every intermediate",
        description=(
            "Load a checkpoint into the NumPy reference, the PyTorch model and PyTorch's stock "
            "TransformerEncoderLayer stack; run all three on several inputs; compare every "
            "intermediate. Exit 0 when all agree, 1 on a mismatch, 2 on bad input."
        ),
    )
    add_checkpoint_arguments(parser)
    parser.add_argument("--dtype", action="append", choices=["float32", "float64"],
                        help="compute in this dtype; repeat for both (default: float32)")
    parser.add_argument("--prompt", help="compare on this text instead of inputs drawn from the vocabulary")
    parser.add_argument("--shape", action="append", metavar="BxS", type=_shape,
                        help="draw one input of B sequences of S tokens instead of the default three "
                             "(S = 1, S = max_seq_len with B = 3, B = 2 with S = 5); repeatable")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn inputs (default 0)")
    parser.add_argument("--grads", action="store_true",
                        help="also compare the NumPy backward pass with autograd: the loss, the gradient at every "
                             "intermediate (in reverse order) and of every parameter")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--html", metavar="OUT.html",
                        help="also write one self-contained page: the tables, the first mismatch, error histograms")
    parser.set_defaults(func=run)


def _shape(text: str) -> tuple[int, int]:
    try:
        batch, seq_len = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BxS such as 1x64, got {text!r}") from None
    if batch < 1 or seq_len < 1:
        raise argparse.ArgumentTypeError(f"B and S must be at least 1, got {text!r}")
    return batch, seq_len


def prompt_case(text: str, checkpoint, Case):
    from numpy_ref.vocab import Vocabulary

    encoded = Vocabulary(checkpoint.vocab, checkpoint.config.pad_id).encode(text)
    if not encoded.ids:
        raise InputError("--prompt is empty: give at least one word.")
    if encoded.unknown:
        print(f"note: {len(encoded.unknown)} word(s) of the prompt are not in the vocabulary and become id "
              f"{checkpoint.config.pad_id}: {', '.join(encoded.unknown)}", file=sys.stderr)
    ids = encoded.ids
    limit = checkpoint.config.max_seq_len
    if len(ids) > limit:
        print(f"note: the prompt has {len(ids)} words; keeping the last {limit} (max_seq_len)", file=sys.stderr)
        ids = ids[-limit:]
    return Case(f"prompt ({len(ids)} words)", np.array([ids], dtype=np.int64))


def run(args) -> int:
    try:
        from torch_model.parity import Case, default_cases, drawn_case, run_parity
    except ImportError as error:
        raise InputError(
            f"verify compares against PyTorch, which cannot be imported here ({error}). "
            f"Install it with: pip install -c constraints.txt '.[torch]'"
        ) from None
    checkpoint = checkpoint_from_args(args)
    if args.prompt is not None:
        cases = [prompt_case(args.prompt, checkpoint, Case)]
    elif args.shape:
        limit = checkpoint.config.max_seq_len
        for batch, seq_len in args.shape:
            if seq_len > limit:
                raise InputError(f"--shape {batch}x{seq_len}: S = {seq_len} is longer than the model's max_seq_len {limit}.")
        cases = [drawn_case(checkpoint.config, batch, seq_len, args.seed + i) for i, (batch, seq_len) in enumerate(args.shape)]
    else:
        cases = default_cases(checkpoint.config, args.seed)
    if args.html:
        from numpy_ref.html import check_writable

        check_writable(args.html)
    dtypes = args.dtype or ["float32"]
    reports = [run_parity(checkpoint, dtype, cases, histogram=bool(args.html)) for dtype in dtypes]
    if args.grads:
        from torch_model.grad_parity import verify_grads

        reports += verify_grads(checkpoint, dtypes, args.seed)
    if args.html:
        from numpy_ref.html import parity_report_page, write_page

        write_page(args.html, parity_report_page(reports, args.checkpoint))
        print(f"wrote {args.html}", file=sys.stderr)

    if args.json:
        print(reports_to_json(reports, args.checkpoint))
    else:
        config = checkpoint.config
        print(f"checkpoint {args.checkpoint}: vocab {config.vocab_size}, d_model {config.d_model}, "
              f"{config.n_heads} heads, d_ff {config.d_ff}, {config.n_layers} layers, max_seq_len {config.max_seq_len}")
        print("NumPy reference vs the PyTorch model (torch) at every intermediate, and vs PyTorch's stock "
              "TransformerEncoderLayer stack (torch_stock) at each block's output and the logits\n")
        print("\n\n".join(format_report(report) for report in reports))
        if len(reports) > 1:
            print("\noverall: " + ("OK" if all(r.ok for r in reports) else "MISMATCH"))
    return 0 if all(report.ok for report in reports) else 1
