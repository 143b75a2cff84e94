"""numpy-ref tokenize SRC... -o OUT.txt: RPG source files -> the tokenized text format."""

from __future__ import annotations

import os
import sys

from numpy_ref.errors import InputError
from rpg_corpus.build import count_words, corpus_text, write_atomic
from rpg_corpus.tokenizer import RpgSourceError, check_source_path, tokenize_files


def register(subparsers):
    parser = subparsers.add_parser(
        "tokenize",
        help="turn RPG source files into the tokenized text format (one line per source line)",
        description="Tokenize RPG IV source files (.rpgle, .sqlrpgle, .rpg, any case) into the "
                    "tokenized text format of SPEC: one source line per output line, lower-case "
                    "words separated by single spaces, comments and blank lines dropped, string "
                    "literals replaced by <str>. The files are read in the order given and their "
                    "lines concatenated. The output is written atomically.",
    )
    parser.add_argument("sources", nargs="+", metavar="SRC", help="RPG source files")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.txt",
                        help="the tokenized text file to write")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.set_defaults(func=run)


def run(args) -> int:
    try:
        sources = [check_source_path(path) for path in args.sources]
    except RpgSourceError as error:
        raise InputError(str(error)) from None
    output = args.output
    if os.path.isdir(output):
        raise InputError(f"{output}: is a folder; expected the name of the tokenized text file "
                         f"to write (for example {os.path.join(output, 'tokenized.txt')}).")
    for source in sources:
        if os.path.exists(output) and os.path.samefile(source, output):
            raise InputError(f"{output}: is also one of the source files; choose another output "
                             f"file so the source is not overwritten.")
    if os.path.exists(output) and not args.force:
        raise InputError(f"{output}: already exists; pass --force to overwrite it.")
    try:
        lines = tokenize_files(sources)
    except RpgSourceError as error:
        raise InputError(str(error)) from None
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    write_atomic(output, corpus_text(lines))
    counts = count_words(lines)
    distinct = len({word for line in lines for word in line.split()})
    print(f"wrote {output}: {counts.lines} lines, {counts.words} words "
          f"({counts.with_newlines} counting <nl>), {distinct} distinct words, "
          f"from {len(sources)} source file{'s' if len(sources) != 1 else ''}")
    if not lines:
        print("numpy-ref: warning: the sources hold no code (only comments or blank lines); "
              "the output file is empty", file=sys.stderr)
    return 0
