"""RPG IV source -> the tokenized text format (one source line per output line,
lower-case words separated by single spaces, blank lines dropped).

The rules, in the order they are applied to each physical line:

File level
  * Bytes are decoded as UTF-8 (a leading byte-order mark is dropped); a file that
    is not valid UTF-8 is decoded as Latin-1, which never fails.
  * Lines end at CR LF, CR or LF. Tabs are expanded to the next multiple of 8
    columns *before* any column logic; other control characters become spaces
    (so a word never holds white space or a control character); a lone
    surrogate becomes U+FFFD.
  * If the first non-blank line is ``**free`` (any case), the whole file is free
    form: no columns, no 80-column cut. Otherwise the file is fixed form (below).
  * A line starting with ``**`` in column 1 followed by a blank, the end of the
    line, ``CTDATA``, ``FTRANS`` or ``ALTSEQ`` starts compile-time data: it and
    everything after it is dropped. A stray ``**free`` line is dropped.

Fixed form (each line cut at column 80; columns 1-5 are a sequence number)
  * ``*`` in column 7 -> comment line, dropped.
  * Columns 6 and 7 blank -> free-form code in columns 8-80 (modern RPG).
  * Between ``/free`` and ``/end-free`` (the directives themselves dropped),
    columns 6-80 are free-form code; column 7 has no comment meaning there.
  * A letter in column 6 is the specification type (H F D I C O P; any letter is
    taken) and becomes its own word, also when glued to a name (``FCUSTMAST`` ->
    ``f custmast``). A spec line with no other word is dropped.
  * Fields that may legally touch are split at their column boundaries (only
    where a name character sits on both sides): F spec file name | file type
    (column 17, when columns 17-18 hold a file type and designation); D spec
    name | ``E`` of an ``E DS`` (column 22); C spec indicators | factor 1 |
    opcode | factor 2 (columns 12, 26, 36), and for opcodes without an extended
    factor 2 also factor 2 | result | length | decimals | resulting indicators
    (columns 50, 64, 69, 71, 73, 75). A C spec whose column 26 does not start
    an opcode (a mis-aligned or tab-indented line) is not split. Length and type
    of a D spec stay together (``7P 2`` -> ``7p 2``).
  * ``C/EXEC SQL`` and ``C/END-EXEC``: a ``/`` in column 7 starts a directive; a
    ``+`` in column 7 of a C spec (SQL continuation) is dropped.

Words (free form, and the code part of fixed-form lines)
  * ``//`` to the end of the line is a comment (not inside a string literal).
  * A line whose code starts with ``/`` and a letter is a directive; its name is
    one word (``/copy``, ``/if``, ``/end-exec``).
  * ``'...'`` with ``''`` as an escaped quote is one word ``<str>``; so are typed
    literals ``x'..'``, ``d'..'``, ``t'..'``, ``z'..'``, ``g'..'``, ``u'..'``. A
    literal left open at the end of a line whose last non-blank character is
    ``-`` or ``+`` (RPG literal continuation) continues on the next code line.
  * ``%`` followed by a letter starts a built-in: ``%trim``, ``%found``.
  * ``*`` followed by a letter is a special word (``*on``, ``*inlr``, ``*loval``)
    unless it is glued to an operand on its left (``a*b``: multiplication).
  * ``<> <= >= += -= *= /= ** **=`` are one word each; every other punctuation
    character is a word of its own: ``( ) ; : , = + - * / < > .`` ...
  * Names are runs of letters, digits, ``_ # @ $``. A ``-`` glues two letter
    runs only for RPG's hyphenated keywords: everything beginning ``dcl-`` or
    ``end-`` and ``ctl-opt on-error on-exit on-excp z-add z-sub eval-corr
    xml-into xml-sax data-into data-gen snd-msg for-each``; any other ``-`` is
    the minus operator (``total-disc`` -> ``total - disc``).
  * A dot between digits is a decimal point (``7.50`` stays one word, and so
    does ``.5``); any other dot is its own word: ``ds.field`` -> ``ds . field``.
  * Every word is lower-cased.

Nothing here raises on strange input: any text gives a list of lines.
"""

from __future__ import annotations

import os
import re

RPG_EXTENSIONS = (".rpgle", ".sqlrpgle", ".rpg")
STRING_WORD = "<str>"
TAB_SIZE = 8
FIXED_WIDTH = 80

HYPHENATED_KEYWORDS = frozenset({
    "ctl-opt", "on-error", "on-exit", "on-excp", "z-add", "z-sub", "eval-corr",
    "xml-into", "xml-sax", "data-into", "data-gen", "snd-msg", "for-each",
})
HYPHEN_STEMS = frozenset({"dcl", "end"})

# C-spec opcodes whose operand is an extended factor 2 (columns 36-80 are free text).
_EXTENDED_FACTOR2 = frozenset({
    "", "CALLP", "DOU", "DOW", "ELSEIF", "EVAL", "EVALR", "EVAL-CORR", "FOR", "FOR-EACH",
    "IF", "ON-ERROR", "ON-EXCP", "RETURN", "SORTA", "WHEN", "XML-INTO", "XML-SAX",
    "DATA-INTO", "DATA-GEN", "SND-MSG",
})
_C_BOUNDARIES = (12, 26, 36)
_C_BOUNDARIES_TRADITIONAL = (12, 26, 36, 50, 64, 69, 71, 73, 75)
_F_BOUNDARIES = (17,)
_D_BOUNDARIES = (22,)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_FREE_HEADER = re.compile(r"\s*\*\*free\s*$", re.IGNORECASE)
_COMPILE_TIME_DATA = re.compile(r"\*\*(?:\s|$|ctdata|ftrans|altseq)", re.IGNORECASE)
_STRAY_FREE = re.compile(r"\*\*free", re.IGNORECASE)
_DIRECTIVE = re.compile(r"\s*(/[^\W\d_][\w#@$]*(?:-[\w#@$]+)*)")
_NAME_CHAR = re.compile(r"[\w#@$]")
_STRING_BODY = re.compile(r"(?:[^']|'')*'")
_HYPHEN_TAIL = re.compile(r"-([A-Za-z]+)(?![\w#@$])")
_TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<comment>//)
    | (?P<typed>[xXdDtTzZgGuU]')
    | (?P<quote>')
    | (?P<bif>%[^\W\d_][\w#@$]*)
    | (?P<op>\*\*=?|<>|<=|>=|\+=|-=|\*=|/=)
    | (?P<star>\*[^\W\d_][\w#@$]*)
    | (?P<decimal>\d+\.\d+[\w#@$]*)
    | (?P<lead>\.\d+[\w#@$]*)
    | (?P<word>[\w#@$]+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class RpgSourceError(ValueError):
    """A path that is not a readable RPG source file (the message names it)."""


class _State:
    """What carries over from one line to the next."""

    def __init__(self):
        self.free_block = False   # inside /free ... /end-free
        self.in_string = False    # a literal continued with - or + at the end of the last line


def tokenize_source(text: str, filename: str = "<string>") -> list[str]:
    """Tokenize RPG source text: one string of space-separated lower-case words per
    kept source line. `filename` is only a label; the rules do not depend on it."""
    del filename  # the rules are the same for every extension (RPG IV columns)
    if text.startswith("\ufeff"):
        text = text[1:]
    text = _SURROGATE.sub("\ufffd", text)  # lone surrogates could not be written as UTF-8
    raw_lines = _LINE_BREAK.split(text)
    lines = [_CONTROL.sub(" ", line.expandtabs(TAB_SIZE)) for line in raw_lines]
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    free_file = first is not None and _FREE_HEADER.match(lines[first]) is not None
    state = _State()
    out = []
    for number, line in enumerate(lines):
        if free_file and number == first:
            continue
        if _COMPILE_TIME_DATA.match(line):
            break
        if _STRAY_FREE.match(line):
            continue
        words = _free_line(line, state) if free_file else _fixed_line(line, state)
        if words:
            out.append(" ".join(word.lower() for word in words))
    return out


def _free_line(code: str, state: _State, directives_toggle: bool = False) -> list[str]:
    """Words of a piece of free-form code (a whole **free line or a fixed line's code part)."""
    match = _DIRECTIVE.match(code) if not state.in_string else None
    if match:
        name = match.group(1).lower()
        if name in ("/free", "/end-free"):
            if directives_toggle:
                state.free_block = name == "/free"
            return []
        return [name] + _lex(code[match.end():], state)
    return _lex(code, state)


def _fixed_line(line: str, state: _State) -> list[str]:
    line = line[:FIXED_WIDTH]
    if len(line) < 6 or not line[5:].strip():
        return []
    if state.free_block:
        code = line[6:] if line[6:7] == "/" else line[5:]   # also C/END-FREE
        return _free_line(code, state, directives_toggle=True)
    spec, col7 = line[5], line[6:7]
    if col7 == "*":
        return []  # comment line
    if spec == " ":
        if col7 in ("", " "):
            return _free_line(line[7:], state, directives_toggle=True)
        return _free_line(line[6:], state, directives_toggle=True)
    if not spec.isalpha():
        return _lex(line[5:], state)
    spec_word = spec.lower()
    if col7 == "/":
        words = _free_line(line[6:], state, directives_toggle=True)
        return [spec_word] + words if words else []
    if col7 == "+" and spec_word == "c":
        words = _lex(line[7:], state)
    else:
        words = _lex(_split_fields(line, spec.upper())[6:], state)
    return [spec_word] + words if words else []


def _split_fields(line: str, spec: str) -> str:
    """Put a blank between two name characters that sit on either side of a field
    boundary of the spec (working right to left keeps the columns valid)."""
    if spec == "C":
        if not line[25:26].isalpha():
            return line  # no opcode starting in column 26: not laid out in columns
        opcode = line[25:35].upper().split("(", 1)[0].strip()
        boundaries = _C_BOUNDARIES if opcode in _EXTENDED_FACTOR2 else _C_BOUNDARIES_TRADITIONAL
    elif spec == "F" and line[16:17].upper() in ("I", "O", "U", "C") \
            and line[17:18].upper() in ("F", "P", "S", "R", "T", "D", " "):
        boundaries = _F_BOUNDARIES   # file type in column 17
    elif spec == "D" and line[21:22].upper() == "E" and line[23:25].upper() == "DS":
        boundaries = _D_BOUNDARIES   # E (externally described) DS
    else:
        return line
    for column in reversed(boundaries):
        i = column - 1  # 0-based index of the field's first character
        if i < len(line) and _NAME_CHAR.match(line[i]) and _NAME_CHAR.match(line[i - 1]):
            line = line[:i] + " " + line[i:]
    return line


def _lex(code: str, state: _State) -> list[str]:
    """Split code into words, updating the string-continuation state."""
    words = []
    pos, end = 0, len(code)
    if state.in_string:
        pos = _close_string(code, 0, state, words, emit=False)
    while pos < end:
        match = _TOKEN.match(code, pos)
        kind = match.lastgroup
        text = match.group()
        if kind == "ws":
            pos = match.end()
        elif kind == "comment":
            break
        elif kind in ("quote", "typed"):
            pos = _close_string(code, match.end(), state, words, emit=True)
        elif kind == "star" and _after_operand(code, pos):
            words.append("*")  # glued to an operand: multiplication
            pos += 1
        elif kind == "lead" and _after_operand(code, pos):
            words.append(".")
            pos += 1
        elif kind == "word":
            pos = match.end()
            tail = _HYPHEN_TAIL.match(code, pos)
            if tail and not text[0].isdigit():
                joined = f"{text}-{tail.group(1)}".lower()
                if joined in HYPHENATED_KEYWORDS or text.lower() in HYPHEN_STEMS:
                    text = joined
                    pos = tail.end()
            words.append(text)
        else:
            words.append(text)
            pos = match.end()
    return words


def _after_operand(code: str, pos: int) -> bool:
    """Is the character just before `pos` the end of an operand (a name or ')')?"""
    return pos > 0 and (_NAME_CHAR.match(code[pos - 1]) is not None or code[pos - 1] == ")")


def _close_string(code: str, start: int, state: _State, words: list[str], emit: bool) -> int:
    """Consume a literal whose body starts at `start`; return the position after it."""
    if emit:
        words.append(STRING_WORD)
    match = _STRING_BODY.match(code, start)
    if match:
        state.in_string = False
        return match.end()
    body = code[start:].rstrip()
    state.in_string = body.endswith(("-", "+"))
    return len(code)


def check_source_path(path) -> str:
    """Return `path` as a string if it names an existing RPG source file, else raise."""
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension not in RPG_EXTENSIONS:
        raise RpgSourceError(
            f"{path}: not an RPG source file name; expected the extension .rpgle, .sqlrpgle or "
            f".rpg (any case), got {extension or 'no extension'!r}.")
    if not os.path.exists(path):
        raise RpgSourceError(f"{path}: no such RPG source file.")
    if not os.path.isfile(path):
        raise RpgSourceError(f"{path}: is not a regular file; expected an RPG source file.")
    return path


def read_source(path) -> str:
    """Read an RPG source file: UTF-8 (a byte-order mark is dropped), else Latin-1."""
    path = check_source_path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise RpgSourceError(
            f"{path}: cannot read the RPG source file ({error.strerror}).") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def tokenize_files(paths) -> list[str]:
    """Tokenize source files in the given order; all paths are checked before any is read."""
    checked = [check_source_path(path) for path in paths]
    lines = []
    for path in checked:
        lines.extend(tokenize_source(read_source(path), path))
    return lines
