"""numpy-ref make-corpus: build the synthetic RPG training and evaluation files."""

from __future__ import annotations

from numpy_ref.errors import InputError
from rpg_corpus.build import (
    DEFAULT_PROGRAMS, DEFAULT_SEED, EVALUATION_EVERY, CorpusError, build_corpus,
)

TARGET_WORDS = 400_000


def register(subparsers):
    parser = subparsers.add_parser(
        "make-corpus",
        help="generate the synthetic RPG corpus (training and evaluation tokenized files)",
        description="Generate synthetic RPG IV programs from a seed, tokenize them and write "
                    "OUT_DIR/rpg-training-tokenized.txt and OUT_DIR/rpg-evaluation-tokenized.txt "
                    f"(every {EVALUATION_EVERY}th program goes to evaluation). The same seed and "
                    "program count give byte-identical files.",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="default %(default)s")
    parser.add_argument("--programs", type=int, default=DEFAULT_PROGRAMS,
                        help="number of programs to generate (default %(default)s, which gives "
                             f"at least {TARGET_WORDS:,} words)")
    parser.add_argument("--out-dir", default="data", help="output folder (default %(default)s)")
    parser.add_argument("--force", action="store_true", help="overwrite existing corpus files")
    parser.add_argument("--sources-dir", default=None, metavar="DIR",
                        help="also write the generated RPG source files into DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    try:
        report = build_corpus(out_dir=args.out_dir, seed=args.seed, programs=args.programs,
                              force=args.force, sources_dir=args.sources_dir)
    except CorpusError as error:
        raise InputError(str(error)) from None
    for path, count, programs in ((report.training_path, report.training, report.training_programs),
                                  (report.evaluation_path, report.evaluation,
                                   report.evaluation_programs)):
        plural = "s" if programs != 1 else ""
        print(f"wrote {path}: {programs} program{plural}, {count.lines:,} lines, {count.words:,} words "
              f"({count.with_newlines:,} counting <nl>)")
    words = report.training.words + report.evaluation.words
    with_nl = report.training.with_newlines + report.evaluation.with_newlines
    free = report.programs - report.fixed_programs
    print(f"total: {words:,} words ({with_nl:,} counting <nl>); evaluation "
          f"{report.evaluation.words / max(words, 1):.1%} of the words; vocabulary "
          f"{report.vocab_size} words including [PAD]; {report.fixed_programs} fixed-form and "
          f"{free} free-form programs (seed {args.seed}); {report.seconds:.1f} s")
    if words < TARGET_WORDS:
        print(f"note: fewer than {TARGET_WORDS:,} words; use more --programs for a full corpus")
    return 0
