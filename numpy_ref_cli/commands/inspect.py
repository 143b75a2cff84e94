"""numpy-ref inspect: the notebook's five inspection phases on a prompt, NumPy only.

Nothing on this path imports torch: the phases are numpy_ref.phases, the terminal text is
numpy_ref_cli.render_terminal, the page is numpy_ref.html.
"""

from __future__ import annotations

import sys

from numpy_ref.errors import InputError
from numpy_ref.model import load
from numpy_ref.phases import DEFAULT_PROMPT, inspect

DEFAULT_CHECKPOINT = "data/rpg_model.safetensors"


def register(subparsers):
    parser = subparsers.add_parser(
        "inspect",
        help="show the notebook's five phases (input, attention, norms, output, loop) on a prompt",
        description=(
            "Run the prompt through the NumPy reference once (one sequence, unpadded, the notebook's "
            "sliced positions) and show each phase with the checks the notebook made, computed: "
            "1 input (ids, unknown words, embedding rows and positions differ), 2 attention per layer "
            "and head (scores versus weights, row sums, the causal mask, heat maps, the earlier word "
            "each word weights most), 3 feed-forward and LayerNorm statistics, 4 the top next words, "
            "5 the loop, growing the prompt one argmax word at a time. Needs NumPy only."
        ),
    )
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                        help=f"a canonical safetensors checkpoint (default {DEFAULT_CHECKPOINT})")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help=f'the words to inspect (default "{DEFAULT_PROMPT}")')
    parser.add_argument("--steps", type=int, default=8, help="words the loop adds (default 8)")
    parser.add_argument("--top-k", type=int, default=5, help="next words shown with their probabilities (default 5)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="compute in this dtype (default float32)")
    parser.add_argument("--html", metavar="OUT.html",
                        help="also write one self-contained page with heat maps, the mask, the norms and the loop")
    parser.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                        help="colour the terminal output: auto = when stdout is a terminal and NO_COLOR is unset")
    parser.set_defaults(func=run)


def run(args) -> int:
    from numpy_ref_cli.render_terminal import render, use_color

    if args.steps < 0:
        raise InputError(f"--steps must be 0 or more, got {args.steps}.")
    if args.top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {args.top_k}.")
    if args.html is not None:
        from numpy_ref.html import check_writable

        check_writable(args.html)  # before the work, so that a bad path fails at once
    model = load(args.checkpoint, args.dtype)
    inspection = inspect(model, args.prompt, steps=args.steps, top_k=args.top_k, checkpoint=str(args.checkpoint))
    sys.stdout.write(render(inspection, color=use_color(args.color, sys.stdout)))
    if args.html is not None:
        from numpy_ref.html import inspection_page, write_page

        write_page(args.html, inspection_page(inspection))
        print(f"\nwrote {args.html}")
    return 0
