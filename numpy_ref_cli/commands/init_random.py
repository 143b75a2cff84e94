"""numpy-ref init-random -o PATH: a canonical checkpoint of seeded random weights."""

from __future__ import annotations

from numpy_ref.checkpoint import save_checkpoint
from numpy_ref.config import ModelConfig
from numpy_ref.random_init import random_params, random_vocab


def register(subparsers):
    parser = subparsers.add_parser(
        "init-random",
        help="write a checkpoint of seeded random weights (for checking the machinery)",
        description="Write a canonical safetensors checkpoint of seeded random weights, scaled so "
                    "that attention is far from uniform. The same seed gives the same file.",
    )
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    parser.add_argument("--seed", type=int, default=0)
    defaults = ModelConfig(vocab_size=1)
    parser.add_argument("--vocab-size", type=int, default=64)
    for name in ("d_model", "n_heads", "d_ff", "n_layers", "max_seq_len"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(func=run)


def run(args) -> int:
    config = ModelConfig(
        vocab_size=args.vocab_size, d_model=args.d_model, n_heads=args.n_heads,
        d_ff=args.d_ff, n_layers=args.n_layers, max_seq_len=args.max_seq_len,
    )
    save_checkpoint(args.output, random_params(config, args.seed), config, random_vocab(config.vocab_size),
                    overwrite=args.force)
    print(f"wrote {args.output}: seeded random weights (seed {args.seed}), {config}")
    return 0
