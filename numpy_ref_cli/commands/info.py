"""numpy-ref info CHECKPOINT: what a checkpoint file holds, in any supported format.

Prints the format, the config (and where each value came from), the parameter
count, a table of the tensors (name, shape, stored dtype, min/max/mean/std of
the float32 values) and a summary of the vocabulary. The file is validated
exactly as `convert` would validate it.
"""

from __future__ import annotations

import os

import numpy as np

from numpy_ref_cli.checkpoint_args import add_checkpoint_arguments, load_from_args

FIRST_WORDS = 12


def register(subparsers):
    parser = subparsers.add_parser(
        "info",
        help="describe a checkpoint: format, config, tensors, vocabulary",
        description=(
            "Read a checkpoint in any supported format (as convert does, without running anything from it) "
            "and describe it: format, config, parameter count, a table of the tensors with their statistics, "
            "and the vocabulary. Exit 0, or 2 on bad input."
        ),
    )
    add_checkpoint_arguments(parser)
    parser.set_defaults(func=run)


def _stats(array) -> tuple:
    values = np.asarray(array, dtype=np.float64)
    if values.size == 0:
        return (float("nan"),) * 4
    return values.min(), values.max(), values.mean(), values.std()


def run(args) -> int:
    result = load_from_args(args)
    checkpoint, config = result.checkpoint, result.checkpoint.config
    print(f"file: {args.checkpoint} ({os.path.getsize(args.checkpoint):,} bytes)")
    print(f"format: {result.format}")
    details = result.details
    if details:
        print(f"  zip folder {details['folder']!r}, byte order {details['byteorder']}, {details['storages']} storages, "
              f"{len(details['views'])} tensor(s) stored as views, {details['requires_grad']} with requires_grad")
    print("config:")
    for name, value in config.to_dict().items():
        print(f"  {name:<12} {value!s:<14} ({result.config_origin.get(name, 'the file')})")
    scalars = sum(int(np.size(array)) for array in checkpoint.params.values())
    print(f"parameters: {len(checkpoint.params)} tensors, {scalars:,} scalars")

    rows = [("name", "shape", "stored", "min", "max", "mean", "std")]
    for name, array in checkpoint.params.items():
        low, high, mean, std = _stats(array)
        rows.append((name, "x".join(str(d) for d in np.shape(array)), result.source_dtypes.get(name, "float32"),
                     f"{low:.4g}", f"{high:.4g}", f"{mean:.4g}", f"{std:.4g}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) if i < 3 else cell.rjust(width) for i, (cell, width) in enumerate(zip(row, widths))]
        print("  " + "  ".join(cells).rstrip())

    vocab = checkpoint.vocab
    shown = " ".join(vocab[:FIRST_WORDS]) + (" ..." if len(vocab) > FIRST_WORDS else "")
    print(f"vocabulary: {len(vocab)} words ({result.vocab_origin}); first: {shown}")
    if result.notes:
        print("notes:")
        for note in result.notes:
            print(f"  - {note}")
    return 0
