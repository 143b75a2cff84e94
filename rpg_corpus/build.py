"""Build the synthetic training corpus: generate programs, tokenize them, write the
two tokenized files of SPEC (`rpg-training-tokenized.txt`, `rpg-evaluation-tokenized.txt`).

Program i is generated from its own `random.Random(f"rpg-corpus/{seed}/{i}")`
(string seeds are hashed with SHA-512 by `random`, the same on every Python
version and independent of PYTHONHASHSEED), so it does not depend on how many
programs are built; its form (fixed or free) is stratified, 3 fixed in every block
of 5 programs (`is_fixed_form`), so the corpus is exactly 60/40. Every 10th program
(i % 10 == 9) goes to evaluation, the rest to training. The generated source goes through `tokenize_source`, exactly
as a real source file would.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

from numpy_ref.atomic import write_text_atomic
from numpy_ref.vocab import build_vocabulary, words_of_text

from .generator import generate_program
from .tokenizer import tokenize_source

TRAINING_FILE = "rpg-training-tokenized.txt"
EVALUATION_FILE = "rpg-evaluation-tokenized.txt"
EVALUATION_EVERY = 10
DEFAULT_SEED = 0
DEFAULT_PROGRAMS = 300     # 529,492 words without <nl> with seed 0 (at least 400,000 needed)
MIN_PROGRAMS = EVALUATION_EVERY
FORM_BLOCK, FORM_BLOCK_FIXED = 5, 3   # 3 fixed-form programs in every 5 (60%)


class CorpusError(ValueError):
    """A request the corpus builder cannot carry out (the message says why)."""


def program_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"rpg-corpus/{seed}/{index}")


def is_evaluation(index: int) -> bool:
    return index % EVALUATION_EVERY == EVALUATION_EVERY - 1


def is_fixed_form(seed: int, index: int) -> bool:
    """Stratified form choice: in each block of 5 consecutive programs, 3 are fixed form
    and 2 free form, in an order shuffled from the seed, so the corpus is 60/40."""
    pattern = [True] * FORM_BLOCK_FIXED + [False] * (FORM_BLOCK - FORM_BLOCK_FIXED)
    random.Random(f"rpg-corpus/{seed}/forms/{index // FORM_BLOCK}").shuffle(pattern)
    return pattern[index % FORM_BLOCK]


def generate_sources(seed: int, programs: int):
    """Yield (index, file name, source text) of each program, in order."""
    for index in range(programs):
        name, text = generate_program(program_rng(seed, index), index,
                                      fixed=is_fixed_form(seed, index))
        yield index, name, text


def corpus_text(lines: list[str]) -> str:
    """The file content: one line per tokenized source line, each ending with a newline."""
    return "".join(line + "\n" for line in lines)


@dataclass
class WordCount:
    words: int          # words without <nl>
    newlines: int       # <nl> words SPEC inserts between non-empty lines
    lines: int

    @property
    def with_newlines(self) -> int:
        return self.words + self.newlines


def count_words(lines: list[str]) -> WordCount:
    """Count as SPEC does: non-empty lines joined by " <nl> " and split on white space."""
    kept = [line for line in lines if line.strip()]
    words = sum(len(line.split()) for line in kept)
    return WordCount(words=words, newlines=max(len(kept) - 1, 0), lines=len(kept))


def vocabulary(training: list[str], evaluation: list[str]) -> list[str]:
    """SPEC's vocabulary of two lists of tokenized lines (numpy_ref.vocab does the work)."""
    return build_vocabulary(words_of_text("\n".join(training)), words_of_text("\n".join(evaluation)))


def write_atomic(path, text: str) -> None:
    """Write UTF-8 text atomically (a reader never sees a half-written file)."""
    write_text_atomic(path, text)


@dataclass
class CorpusReport:
    training_path: str
    evaluation_path: str
    programs: int
    training_programs: int
    evaluation_programs: int
    fixed_programs: int
    training: WordCount
    evaluation: WordCount
    vocab_size: int     # including [PAD]
    seconds: float


def build_corpus(out_dir: str = "data", seed: int = DEFAULT_SEED, programs: int = DEFAULT_PROGRAMS,
                 force: bool = False, sources_dir: str | None = None) -> CorpusReport:
    """Generate, tokenize and write the two corpus files; return the figures."""
    started = time.perf_counter()
    if programs < MIN_PROGRAMS:
        raise CorpusError(
            f"--programs {programs}: at least {MIN_PROGRAMS} programs are needed so that the "
            f"evaluation file (every {EVALUATION_EVERY}th program) is not empty.")
    training_path = os.path.join(out_dir, TRAINING_FILE)
    evaluation_path = os.path.join(out_dir, EVALUATION_FILE)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise CorpusError(f"{out_dir}: exists and is not a folder; expected the output folder.")
    if not force:
        for path in (training_path, evaluation_path):
            if os.path.exists(path):
                raise CorpusError(
                    f"{path}: already exists; pass --force to overwrite it (the corpus is "
                    f"rebuilt byte for byte from the seed, so overwriting is safe to repeat).")
    if sources_dir is not None and os.path.exists(sources_dir) and not os.path.isdir(sources_dir):
        raise CorpusError(f"{sources_dir}: exists and is not a folder; expected a folder for the "
                          f"generated RPG sources.")
    training, evaluation = [], []
    n_training = n_evaluation = n_fixed = 0
    if sources_dir is not None:
        os.makedirs(sources_dir, exist_ok=True)
    for index, name, text in generate_sources(seed, programs):
        if sources_dir is not None:
            write_atomic(os.path.join(sources_dir, name), text)
        if not text.lstrip().lower().startswith("**free"):
            n_fixed += 1
        lines = tokenize_source(text, name)
        if is_evaluation(index):
            evaluation.extend(lines)
            n_evaluation += 1
        else:
            training.extend(lines)
            n_training += 1
    os.makedirs(out_dir, exist_ok=True)
    write_atomic(training_path, corpus_text(training))
    write_atomic(evaluation_path, corpus_text(evaluation))
    return CorpusReport(
        training_path=training_path, evaluation_path=evaluation_path, programs=programs,
        training_programs=n_training, evaluation_programs=n_evaluation, fixed_programs=n_fixed,
        training=count_words(training), evaluation=count_words(evaluation),
        vocab_size=len(vocabulary(training, evaluation)),
        seconds=time.perf_counter() - started)
