"""The checkpoint arguments shared by every command that reads a checkpoint (verify, convert, info).

    CHECKPOINT              any format conversion reads (told by content, not by name):
                            canonical safetensors, the original program's libtorch archive,
                            a torch.save zip (.pt/.pth/.bin) of a state_dict or tensor list,
                            safetensors with canonical names but no metadata
    --heads N               attention heads (not stored in the original or .pt formats; default 4)
    --vocab-from TRAIN EVAL the tokenized training and evaluation files: the vocabulary is
                            rebuilt from them exactly as SPEC says
    --vocab FILE            the vocabulary itself: a JSON list of words in id order, or a text
                            file with one word per line (the word of id N on line N + 1)
    --config FILE           a JSON object with some or all of ModelConfig's fields (vocab_size,
                            d_model, n_heads, d_ff, n_layers, max_seq_len, ln_eps, pad_id,
                            mask_value); fields it omits are read off the shapes or defaulted

What the file does not say is chosen as described in conversion/load.py, and each
choice is printed on stderr as a note.
"""

from __future__ import annotations

import argparse
import sys

from numpy_ref.checkpoint import Checkpoint


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


def add_checkpoint_arguments(parser: argparse.ArgumentParser, metavar: str = "CHECKPOINT") -> None:
    """Add CHECKPOINT (positional, dest `checkpoint`) and --heads, --vocab-from, --vocab, --config
    (dests `heads`, `vocab_from`, `vocab_file`, `config_file`)."""
    parser.add_argument(
        "checkpoint", metavar=metavar,
        help="the checkpoint: canonical .safetensors, the original program's libtorch archive, or a "
             "torch.save .pt/.pth/.bin file (the format is told by the file's content)",
    )
    parser.add_argument("--heads", type=_positive_int, metavar="N",
                        help="attention heads, for formats that do not store them (default 4, SPEC's)")
    vocab = parser.add_mutually_exclusive_group()
    vocab.add_argument("--vocab-from", nargs=2, metavar=("TRAIN", "EVAL"), dest="vocab_from",
                       help="rebuild the vocabulary from the tokenized training and evaluation files (SPEC)")
    vocab.add_argument("--vocab", metavar="FILE", dest="vocab_file",
                       help="the vocabulary: a JSON list of words in id order, or one word per line")
    parser.add_argument("--config", metavar="FILE", dest="config_file",
                        help="JSON object of model hyper-parameters (ModelConfig fields; any subset) "
                             "for formats that do not store them")


def print_notes(notes, stream=None) -> None:
    stream = stream or sys.stderr
    for note in notes:
        print(f"note: {note}", file=stream)


def load_from_args(args, allow_placeholder_vocab: bool = True):
    """The LoadResult of the file and flags in `args` (see conversion.load.load_detailed)."""
    from conversion.load import load_detailed

    return load_detailed(
        args.checkpoint, heads=args.heads, vocab_from=args.vocab_from, vocab_file=args.vocab_file,
        config_file=args.config_file, allow_placeholder_vocab=allow_placeholder_vocab,
    )


def checkpoint_from_args(args) -> Checkpoint:
    """Load the checkpoint of `args` in whatever format; print the notes to stderr."""
    result = load_from_args(args)
    print_notes(result.notes)
    return result.checkpoint
