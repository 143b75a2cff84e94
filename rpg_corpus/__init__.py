"""RPG corpus tooling: turn RPG IV source into the tokenized text format of SPEC
("Tokens and vocabulary"), and build a synthetic, reproducible training corpus.

    from rpg_corpus import tokenize_source
    tokenize_source("     C                   EVAL      TOTAL = TOTAL + AMT")
    # -> ['c eval total = total + amt']

Modules: `tokenizer` (the rules), `generator` (seeded synthetic RPG programs),
`build` (the corpus files, word counts, atomic writes). Standard library only.
"""

from .tokenizer import (
    RPG_EXTENSIONS,
    RpgSourceError,
    read_source,
    tokenize_files,
    tokenize_source,
)

__all__ = ["RPG_EXTENSIONS", "RpgSourceError", "read_source", "tokenize_files", "tokenize_source"]
