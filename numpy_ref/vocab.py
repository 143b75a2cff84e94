"""Words and ids, exactly as SPEC "Tokens and vocabulary" defines them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

PAD_WORD = "[PAD]"
NEWLINE_WORD = "<nl>"


def words_of_text(text: str) -> list[str]:
    """A tokenized file's words: non-blank lines joined with " <nl> ", split on white space."""
    lines = [line for line in text.splitlines() if line.strip()]
    return f" {NEWLINE_WORD} ".join(lines).split()


def read_words(path) -> list[str]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such tokenized text file.") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: a tokenized text file must be UTF-8 ({error}).") from None
    return words_of_text(text)


def build_vocabulary(training_words, evaluation_words) -> list[str]:
    """[PAD] first, then each new word of training, then each new word of evaluation."""
    vocab = [PAD_WORD]
    seen = {PAD_WORD}
    for word in list(training_words) + list(evaluation_words):
        if word not in seen:
            seen.add(word)
            vocab.append(word)
    return vocab


@dataclass
class Encoded:
    ids: list[int]
    unknown: list[str]  # the prompt's words that are not in the vocabulary (each became pad_id)


class Vocabulary:
    def __init__(self, words: list[str], pad_id: int = 0):
        self.words = list(words)
        self.pad_id = pad_id
        self.index = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> Encoded:
        """Split a prompt on white space (no <nl> is added); unknown words become pad_id."""
        ids, unknown = [], []
        for word in text.split():
            if word in self.index:
                ids.append(self.index[word])
            else:
                ids.append(self.pad_id)
                unknown.append(word)
        return Encoded(ids, unknown)

    def decode(self, ids) -> str:
        """Words joined by spaces; <nl> shown as a line break."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.words):
                raise InputError(f"id {i} is outside the vocabulary (0 to {len(self.words) - 1}).")
            out.append(self.words[i])
        return " ".join(out).replace(f" {NEWLINE_WORD} ", "\n").replace(NEWLINE_WORD, "\n")
