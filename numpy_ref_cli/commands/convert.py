"""numpy-ref convert SRC -o DST.safetensors: any checkpoint format -> the canonical safetensors file.

The output is written atomically (numpy_ref.checkpoint.save_checkpoint) and read
back and compared before the command reports success. An existing DST is never
replaced without --force, and nothing is written when anything is wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from numpy_ref.checkpoint import load_checkpoint, save_checkpoint
from numpy_ref.errors import CheckpointError
from numpy_ref_cli.checkpoint_args import add_checkpoint_arguments, load_from_args, print_notes


def register(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert a checkpoint (the original libtorch file, a .pt state_dict, ...) to canonical safetensors",
        description=(
            "Read a checkpoint in any supported format (the original program's libtorch archive, a torch.save "
            ".pt/.pth/.bin file, safetensors) without running anything from it, and write the canonical "
            "safetensors checkpoint (SPEC 'Canonical names'): float32 tensors plus the config and the "
            "vocabulary. What the source does not store comes from the flags; every such choice is printed "
            "as a note. Exit 0 on success, 2 on bad input (nothing is written then)."
        ),
    )
    add_checkpoint_arguments(parser, metavar="SRC")
    parser.add_argument("-o", "--output", required=True, metavar="DST", help="the .safetensors file to write")
    parser.add_argument("--force", action="store_true", help="overwrite DST if it exists")
    parser.add_argument(
        "--placeholder-vocab", action="store_true",
        help="when SRC stores no vocabulary and none is given, write placeholder words [PAD], [ID1], ... "
             "(without this, a missing vocabulary is an error)",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    output = Path(args.output)
    if output.is_dir():
        raise CheckpointError(f"{output}: is a folder; give the path of the .safetensors file to write.")
    if output.exists() and not args.force:
        raise CheckpointError(f"{output} already exists; pass --force to overwrite it.")
    if not output.parent.is_dir():
        raise CheckpointError(f"{output}: the folder {output.parent} does not exist.")

    result = load_from_args(args, allow_placeholder_vocab=args.placeholder_vocab)
    checkpoint = result.checkpoint
    print_notes(result.notes)
    save_checkpoint(output, checkpoint.params, checkpoint.config, checkpoint.vocab, overwrite=args.force)

    written = load_checkpoint(output)
    same = (written.config == checkpoint.config and written.vocab == checkpoint.vocab and all(
        np.array_equal(written.params[name], np.asarray(array, dtype=np.float32))
        for name, array in checkpoint.params.items()))
    if not same:  # pragma: no cover - would be a bug in save_checkpoint
        raise CheckpointError(f"{output}: reading the written file back did not give the same tensors.")

    config = checkpoint.config
    scalars = sum(int(np.size(array)) for array in checkpoint.params.values())
    print(
        f"wrote {output}: {len(checkpoint.params)} float32 tensors ({scalars:,} scalars), vocabulary of "
        f"{len(checkpoint.vocab)} words ({result.vocab_origin}); vocab_size={config.vocab_size}, "
        f"d_model={config.d_model}, n_heads={config.n_heads}, d_ff={config.d_ff}, n_layers={config.n_layers}, "
        f"max_seq_len={config.max_seq_len}; from {args.checkpoint} ({result.format})"
    )
    return 0
