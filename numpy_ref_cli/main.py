"""Entry point of the `numpy-ref` console script.

Exit codes: 0 success, 1 a check failed (e.g. a parity mismatch), 2 bad input.
A user mistake (any `NumpyRefError`) is printed as one paragraph, never as a
traceback.
"""

import argparse
import importlib
import os
import sys
import textwrap

from numpy_ref.errors import NumpyRefError

# Subcommand modules, in the order `numpy-ref --help` lists them.
COMMANDS = ["verify", "info", "convert", "inspect", "generate", "train", "tokenize", "make_corpus", "init_random"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numpy-ref",
        description="A pure-NumPy reference decoder, checked against PyTorch.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"numpy_ref_cli.commands.{name}").register(subparsers)
    return parser


def fail(message: str) -> int:
    """Print a user error as one wrapped paragraph on stderr; return exit code 2."""
    text = textwrap.fill(f"numpy-ref: error: {message}", width=100, break_long_words=False, break_on_hyphens=False)
    print(text, file=sys.stderr)
    return 2


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NumpyRefError as error:
        return fail(str(error))
    except BrokenPipeError:
        # The reader of our output went away (e.g. `numpy-ref info ... | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:
        # A file we were told to read or write cannot be (permissions, a folder, a full disk).
        where = f" {error.filename}" if error.filename else ""
        return fail(f"cannot use{where}: {error.strerror or error}.")
    except KeyboardInterrupt:
        print("numpy-ref: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
