"""The synthetic RPG generator and the corpus build: deterministic, balanced control
flow, both source forms, real fixed-format columns, and the shipped corpus files."""

import random
from pathlib import Path

import pytest

import numpy_ref_cli.main as cli
from rpg_corpus.build import (
    EVALUATION_FILE, TRAINING_FILE, build_corpus, count_words, generate_sources,
    is_evaluation, vocabulary,
)
from rpg_corpus.generator import _Builder, generate_program
from rpg_corpus.tokenizer import tokenize_source

DATA = Path(__file__).resolve().parent.parent / "data"
PROGRAMS = 50

OPENERS = {"if": "endif", "dow": "enddo", "dou": "enddo", "for": "endfor", "select": "endsl",
           "monitor": "endmon", "begsr": "endsr", "dcl-proc": "end-proc", "dcl-pi": "end-pi",
           "dcl-pr": "end-pr", "dcl-ds": "end-ds"}
for _op in ("eq", "ne", "gt", "lt", "ge", "le"):       # legacy fixed-form IFxx, DOWxx, DOUxx
    OPENERS["if" + _op] = "endif"
    OPENERS["dow" + _op] = OPENERS["dou" + _op] = "enddo"
MIDDLES = {"else": ("endif",), "elseif": ("endif",), "when": ("endsl",), "other": ("endsl",),
           "on-error": ("endmon",), "leave": ("enddo", "endfor"), "iter": ("enddo", "endfor")}
CLOSERS = set(OPENERS.values())
STRUCTURE = set(OPENERS) | CLOSERS | set(MIDDLES)


@pytest.fixture(scope="module")
def programs():
    """(name, source, tokenized lines) of the first PROGRAMS programs of seed 0."""
    return [(name, text, tokenize_source(text, name))
            for _, name, text in generate_sources(0, PROGRAMS)]


def structure_word(words):
    """The control-flow opcode of a tokenized line, if it has one."""
    first = words[0]
    if first in ("h", "f", "d"):
        return None                       # fixed-form PR/PI/DS have no end markers
    if first == "p":                      # P spec: p name b / p name e
        return {"b": "dcl-proc", "e": "end-proc"}.get(words[2]) if len(words) > 2 else None
    if first == "c":                      # C spec: c [factor1] opcode ...
        for word in words[1:3]:
            if word in STRUCTURE:
                return word
        return None
    if first == "dcl-ds" and ({"likeds", "likerec", "end-ds"} & set(words)):
        return None                       # a one-line data structure
    return first if first in STRUCTURE else None


def check_balanced(lines):
    stack = []
    for number, line in enumerate(lines, 1):
        word = structure_word(line.split())
        if word is None:
            continue
        if word in OPENERS:
            stack.append(OPENERS[word])
        elif word in CLOSERS:
            assert stack and stack[-1] == word, (number, line, stack)
            stack.pop()
        elif word in ("leave", "iter"):
            assert any(closer in MIDDLES[word] for closer in stack), (number, line, stack)
        else:
            assert stack and stack[-1] in MIDDLES[word], (number, line, stack)
    assert stack == [], stack


def test_generator_is_deterministic():
    first = generate_program(random.Random(7), 3)
    assert generate_program(random.Random(7), 3) == first
    assert generate_program(random.Random(8), 3) != first
    assert first[0].endswith(("3.rpgle", "3.sqlrpgle"))


def test_control_flow_is_balanced(programs):
    for name, _, lines in programs:
        try:
            check_balanced(lines)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from None


def test_balance_checker_catches_mistakes():
    check_balanced(["if a ;", "else ;", "endif ;", "c x begsr", "c endsr"])
    for bad in (["if a ;", "enddo ;"], ["dow a ;"], ["c select", "c else", "c endsl"],
                ["leave ;"], ["p x b", "c endsr"]):
        with pytest.raises(AssertionError):
            check_balanced(bad)


def test_both_forms_in_60_40_proportion(programs):
    free = [name for name, text, _ in programs if text.lower().startswith("**free")]
    assert len(free) == PROGRAMS * 2 // 5            # the corpus build stratifies: exactly 40%
    # generate_program alone draws the form from its rng: fixed with probability 0.6
    drawn = [_Builder(random.Random(f"forms/{i}"), i).fixed for i in range(1000)]
    assert 0.56 <= sum(drawn) / len(drawn) <= 0.64
    for i in range(5):
        text = generate_program(random.Random(f"forms/{i}"), i)[1]
        assert text.startswith("**") != drawn[i]
    names = [name for name, _, _ in programs]
    assert any(n.endswith(".sqlrpgle") for n in names) and any(n.endswith(".rpgle") for n in names)


def test_fixed_form_programs_use_the_columns(programs):
    opcodes = {"EVAL", "EVAL(H)", "IF", "ELSE", "ELSEIF", "ENDIF", "DOW", "DOU", "ENDDO", "FOR",
               "ENDFOR", "SELECT", "WHEN", "OTHER", "ENDSL", "MONITOR", "ON-ERROR", "ENDMON",
               "BEGSR", "ENDSR", "EXSR", "CHAIN", "SETLL", "READE", "READ", "WRITE", "UPDATE",
               "CALLP", "DSPLY", "RETURN", "Z-ADD", "ADD", "MOVE", "MOVEL", "CLEAR", "RESET",
               "LEAVE", "ITER", "SETON", "PLIST", "PARM", "KLIST", "KFLD", "EXFMT"}
    opcodes |= {"IF" + op for op in ("EQ", "NE", "GT", "LT", "GE", "LE")}
    opcodes |= {"DOW" + op for op in ("EQ", "NE", "GT", "LT", "GE", "LE")}
    opcodes |= {"DOU" + op for op in ("EQ", "NE", "GT", "LT", "GE", "LE")}
    c_specs = 0
    for name, text, _ in programs:
        if text.lower().startswith("**free"):
            continue
        for line in text.splitlines():
            code = line[:80]
            assert len(line) <= 80 or line[80:].strip().isalnum(), (name, line)  # change marks
            if code[5:6] == "C" and code[6:7] not in ("*", "/", "+"):
                opcode = code[25:35].strip().upper()
                assert opcode == "" or opcode in opcodes, (name, line)
                c_specs += 1
            if code[5:6] == "F":
                assert code[16:17] in "IUOC"
                assert code[35:42].strip() in ("DISK", "PRINTER", "WORKSTN")
    assert c_specs > 1000


def test_comments_are_generated_and_dropped(programs):
    sources = "\n".join(text for _, text, _ in programs)
    words = {w for _, _, lines in programs for line in lines for w in line.split()}
    assert "// " in sources and "\n      * " in sources
    assert not {"todo:", "todo", "ticket", "approval", "written"} & words


def test_vocabulary_stays_small(programs):
    lines = [line for _, _, ls in programs for line in ls]
    vocab = vocabulary(lines, [])
    assert 300 <= len(vocab) <= 2000
    assert {"if", "else", "endif", "eval", "callp", "c", "<str>", "<nl>", "dcl-s", "%trim",
            "*inlr", "*on", "chain", "%found", "."} <= set(vocab)


# ---------------------------------------------------------------------------------------
# Corpus build and the make-corpus command

@pytest.fixture
def main(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ["tokenize", "make_corpus"])
    return cli.main


def test_corpus_is_byte_identical_for_a_seed(tmp_path):
    a = build_corpus(str(tmp_path / "a"), seed=3, programs=10)
    build_corpus(str(tmp_path / "b"), seed=3, programs=10)
    build_corpus(str(tmp_path / "c"), seed=4, programs=10)
    for name in (TRAINING_FILE, EVALUATION_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
    assert (a.training_programs, a.evaluation_programs, a.fixed_programs) == (9, 1, 6)
    text = (tmp_path / "a" / TRAINING_FILE).read_text()
    assert count_words(text.splitlines()).words == a.training.words
    assert len(text.split()) == a.training.words
    assert a.training.newlines == len(text.splitlines()) - 1


def test_training_and_evaluation_hold_disjoint_programs(tmp_path, programs):
    build_corpus(str(tmp_path), seed=0, programs=20)
    expected_train, expected_eval = [], []
    for index, (_, _, lines) in enumerate(programs[:20]):
        (expected_eval if is_evaluation(index) else expected_train).extend(lines)
    assert (tmp_path / TRAINING_FILE).read_text().splitlines() == expected_train
    assert (tmp_path / EVALUATION_FILE).read_text().splitlines() == expected_eval
    assert [i for i in range(20) if is_evaluation(i)] == [9, 19]


def test_cli_make_corpus(tmp_path, main, capsys):
    out = tmp_path / "corpus"
    sources = tmp_path / "src"
    args = ["make-corpus", "--seed", "1", "--programs", "10", "--out-dir", str(out)]
    assert main(args + ["--sources-dir", str(sources)]) == 0
    printed = capsys.readouterr().out
    assert "9 programs" in printed and "1 program," in printed and "vocabulary" in printed
    assert len(list(sources.iterdir())) == 10
    before = (out / TRAINING_FILE).read_bytes()
    assert main(args) == 2                                   # refuses to overwrite
    assert "--force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    assert (out / TRAINING_FILE).read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == [EVALUATION_FILE, TRAINING_FILE]
    # the written sources tokenize to the same training lines through the tokenize command
    train_sources = sorted((p for p in sources.iterdir() if not p.stem.endswith("0009")),
                           key=lambda p: p.stem[-4:])          # file names end with the index
    assert main(["tokenize", *map(str, train_sources), "-o", str(tmp_path / "t.txt")]) == 0
    assert (tmp_path / "t.txt").read_bytes() == before


def test_cli_make_corpus_bad_input_exits_2(tmp_path, main, capsys):
    assert main(["make-corpus", "--programs", "5", "--out-dir", str(tmp_path)]) == 2
    assert "at least 10 programs" in capsys.readouterr().err
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert main(["make-corpus", "--programs", "10", "--out-dir", str(not_a_folder)]) == 2
    assert "not a folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# The shipped corpus (data/), built with `numpy-ref make-corpus` and its defaults

def test_shipped_corpus_size_and_vocabulary():
    train = (DATA / TRAINING_FILE).read_text(encoding="utf-8").splitlines()
    evaluation = (DATA / EVALUATION_FILE).read_text(encoding="utf-8").splitlines()
    t, e = count_words(train), count_words(evaluation)
    assert t.words + e.words >= 400_000                        # without <nl>
    assert 0.07 <= e.words / (t.words + e.words) <= 0.13       # about 10% for evaluation
    assert 300 <= len(vocabulary(train, evaluation)) <= 2000
    assert all(line.strip() == line and "  " not in line and line for line in train + evaluation)


def test_shipped_corpus_matches_the_generator(programs):
    """The first programs regenerated with the default seed are the start of each file
    (program i does not depend on how many programs are built)."""
    train, evaluation = [], []
    for index, (_, _, lines) in enumerate(programs[:10]):
        (evaluation if is_evaluation(index) else train).extend(lines)
    with open(DATA / TRAINING_FILE, encoding="utf-8") as handle:
        assert [handle.readline().rstrip("\n") for _ in train] == train
    with open(DATA / EVALUATION_FILE, encoding="utf-8") as handle:
        assert [handle.readline().rstrip("\n") for _ in evaluation] == evaluation
