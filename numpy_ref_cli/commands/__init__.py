"""Subcommands of `numpy-ref`: each module has `register(subparsers)`, which adds
its parser and sets `func` to a function `run(args) -> int` (the exit code)."""
