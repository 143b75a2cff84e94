"""The RPG tokenizer's rules, on sources written for these tests. Every expected
line below was written by hand from the rules (rpg_corpus/tokenizer.py docstring).

Column ruler for the fixed-format sources:
         1         2         3         4         5         6         7         8
12345678901234567890123456789012345678901234567890123456789012345678901234567890
"""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numpy_ref_cli.main as cli
from rpg_corpus.tokenizer import RpgSourceError, tokenize_files, tokenize_source


def tok(text):
    return tokenize_source(text)


def at(line, column, text):
    """Check a hand-written fixed-format line: `text` starts at 1-based `column`."""
    assert line[column - 1:column - 1 + len(text)] == text, (line, column, text)
    return line


# ---------------------------------------------------------------------------------------
# Fixed form

def test_f_spec_letter_is_its_own_word_also_when_glued():
    line = at("     FCUSTMAST  IF   E           K DISK", 6, "FCUSTMAST")
    assert tok(line) == ["f custmast if e k disk"]


def test_sequence_number_and_columns_past_80_are_dropped():
    line = at("00100C                   EVAL      TOTAL = TOTAL + AMT", 26, "EVAL")
    line = line.ljust(80) + "CHG001 comment area"
    assert len(line) > 80
    assert tok(line) == ["c eval total = total + amt"]


def test_every_spec_letter_becomes_a_word():
    source = "\n".join([
        "     H DFTACTGRP(*NO)",
        "     FORDHDR    UF A E           K DISK",
        "     D COUNT           S             10I 0",
        "     IINREC",
        "     C                   READ      ORDHDR",
        "     OQPRINT    E            DETAIL",
        "     P CALCTAX         B",
    ])
    assert tok(source) == [
        "h dftactgrp ( *no )",
        "f ordhdr uf a e k disk",
        "d count s 10i 0",
        "i inrec",
        "c read ordhdr",
        "o qprint e detail",
        "p calctax b",
    ]


def test_comment_lines_and_blank_lines_are_dropped():
    source = "\n".join([
        "      * a comment: IF THEN ELSE",
        "     C* a commented-out calculation",
        "     D*NAME           S             10A",
        "",
        "     C",                      # a spec letter with nothing else
        "          ",
        "     C                   RETURN",
    ])
    assert tok(source) == ["c return"]


def test_c_spec_factor_opcode_result_and_indicators():
    source = "\n".join([
        at("     C     CUSTNO        CHAIN     CUSTMAST                           90", 71, "90"),
        at("     C     *ENTRY        PLIST", 12, "*ENTRY"),
        at("     C                   PARM                    PCUSTNO          10", 50, "PCUSTNO"),
        at("     C                   Z-ADD(H)  0             TOTAL", 26, "Z-ADD(H)"),
        at("     C     STATUS        IFEQ      'A'", 36, "'A'"),
        at("     C                   SETON                                        LR", 71, "LR"),
    ])
    assert tok(source) == [
        "c custno chain custmast 90",
        "c *entry plist",
        "c parm pcustno 10",
        "c z-add ( h ) 0 total",
        "c status ifeq <str>",
        "c seton lr",
    ]


def test_fields_touching_at_a_column_boundary_are_split():
    f_spec = at("     FCUSTMASTL1IF   E           K DISK", 17, "IF")
    c_spec = at("     C     CUSTOMERNUMBR1CHAIN     CUSTMAST", 26, "CHAIN")
    # result field, length, decimals and two resulting indicators all touching
    traditional = ("     C                   Z-ADD     AMOUNT        TOTALAMOUNT123"
                   + "99999" + "12" + "50" + "51")
    at(traditional, 50, "TOTALAMOUNT123")
    at(traditional, 64, "99999")
    at(traditional, 69, "12")
    at(traditional, 71, "5051")
    assert tok(f_spec) == ["f custmastl1 if e k disk"]
    assert tok(c_spec) == ["c customernumbr1 chain custmast"]
    assert tok(traditional) == ["c z-add amount totalamount123 99999 12 50 51"]


def test_extended_factor_2_is_not_split_at_traditional_columns():
    line = at("     C                   EVAL      TOTAL = TOTAL + AMOUNT + OVERDUEAMOUNT",
              61, "OVERDUEAMOUNT")  # spans columns 61-73: result, length and indicator columns
    assert tok(line) == ["c eval total = total + amount + overdueamount"]


def test_d_spec_length_and_type_stay_together():
    source = "\n".join([
        at("     D AMOUNT          S              7P 2", 39, "7P 2"),
        at("     D NAME            S             10A   INZ('Smith')", 38, "10A"),
        at("     D ORDDATE         S               D   DATFMT(*ISO)", 40, "D"),
        at("     D CUSTDS        E DS                  EXTNAME(CUSTMAST)", 22, "E DS"),
        at("     DCUSTOMERADDRES1E DS", 22, "E"),
    ])
    assert tok(source) == [
        "d amount s 7p 2",
        "d name s 10a inz ( <str> )",
        "d orddate s d datfmt ( *iso )",
        "d custds e ds extname ( custmast )",
        "d customeraddres1 e ds",
    ]


def test_free_form_code_from_column_8_in_a_fixed_file():
    source = "\n".join([
        "     D TOTAL           S             11P 2",
        at("       dcl-s count int(10);", 8, "dcl-s"),
        at("       if total > 0;", 8, "if"),
        "         count += 1;",
        "       endif;",
    ])
    assert tok(source) == [
        "d total s 11p 2",
        "dcl-s count int ( 10 ) ;",
        "if total > 0 ;",
        "count += 1 ;",
        "endif ;",
    ]


def test_free_block_between_directives():
    source = "\n".join([
        "     C                   EXSR      CALC",
        "      /free",
        "        total = total + amount; // running total",
        at("      *inlr = *on;", 7, "*inlr"),   # column 7 '*' inside /free: code, not comment
        "      /end-free",
        "     C                   RETURN",
        "      /FREE",
        "        return;",
        "      /END-FREE",
        "     C/FREE",
        "        x = 1;",
        "     C/END-FREE",
        "     C                   RETURN",
    ])
    assert tok(source) == [
        "c exsr calc",
        "total = total + amount ;",
        "*inlr = *on ;",
        "c return",
        "return ;",
        "x = 1 ;",
        "c return",
    ]


def test_compile_time_data_is_dropped():
    source = "\n".join([
        "     D MONTHS          S              3A   DIM(12) CTDATA PERRCD(12)",
        "     C                   RETURN",
        "**CTDATA MONTHS",
        "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC",
    ])
    assert tok(source) == [
        "d months s 3a dim ( 12 ) ctdata perrcd ( 12 )",
        "c return",
    ]


def test_embedded_sql_in_fixed_form():
    source = "\n".join([
        "     C/EXEC SQL",
        "     C+ SELECT CUSTNAME INTO :NAME FROM CUSTMAST",
        "     C+ WHERE CUSTNO = :KEY",
        "     C/END-EXEC",
    ])
    assert tok(source) == [
        "c /exec sql",
        "c select custname into : name from custmast",
        "c where custno = : key",
        "c /end-exec",
    ]


# ---------------------------------------------------------------------------------------
# Free form

def test_fully_free_file_has_no_columns():
    long_tail = " + ".join(f"amount{i}" for i in range(30))
    source = "**FREE\n" + "dcl-s total packed(9:2);\n" + f"total = {long_tail};\n"
    expected_tail = " + ".join(f"amount{i}" for i in range(30))
    assert tok(source) == ["dcl-s total packed ( 9 : 2 ) ;", f"total = {expected_tail} ;"]
    assert len(source.splitlines()[2]) > 100


@pytest.mark.parametrize("header", ["**free", "**FREE", "**Free", "\n\n**free  "])
def test_free_header_any_case(header):
    assert tok(header + "\nC = 1;\n") == ["c = 1 ;"]


def test_comments_but_not_inside_strings():
    source = "**free\n// header comment\nurl = 'http://example.com'; // trailing comment\n"
    assert tok(source) == ["url = <str> ;"]


def test_operators():
    source = "\n".join([
        "**free",
        "if a<>b and c<=d or e>=f;",
        "x+=1; x-=1; x*=2; x/=2;",
        "y = (x**2) / 3 - z;",
    ])
    assert tok(source) == [
        "if a <> b and c <= d or e >= f ;",
        "x += 1 ; x -= 1 ; x *= 2 ; x /= 2 ;",
        "y = ( x ** 2 ) / 3 - z ;",
    ]


def test_special_words_and_multiplication():
    source = "\n".join([
        "**free",
        "*inlr = *on;",
        "setll *loval custmast;",
        "total = qty*price;",
        "total = qty * price;",
        "total = (qty)*rate;",
        "if *in(99) = *off and x = *blanks;",
    ])
    assert tok(source) == [
        "*inlr = *on ;",
        "setll *loval custmast ;",
        "total = qty * price ;",
        "total = qty * price ;",
        "total = ( qty ) * rate ;",
        "if *in ( 99 ) = *off and x = *blanks ;",
    ]


def test_built_in_functions_are_one_word():
    assert tok("**free\nname = %trim(%subst(x:1:%len(y)));\nif %found(custmast);") == [
        "name = %trim ( %subst ( x : 1 : %len ( y ) ) ) ;",
        "if %found ( custmast ) ;",
    ]


def test_hyphenated_keywords_and_minus():
    source = "\n".join([
        "**free",
        "ctl-opt dftactgrp(*no);",
        "dcl-ds orderInfo qualified;",
        "end-ds;",
        "dcl-proc calcTax;",
        "end-proc;",
        "monitor;",
        "on-error;",
        "endmon;",
        "net = total-disc;",
        "net = total - disc;",
    ])
    assert tok(source) == [
        "ctl-opt dftactgrp ( *no ) ;",
        "dcl-ds orderinfo qualified ;",
        "end-ds ;",
        "dcl-proc calctax ;",
        "end-proc ;",
        "monitor ;",
        "on-error ;",
        "endmon ;",
        "net = total - disc ;",
        "net = total - disc ;",
    ]


def test_z_add_in_fixed_form_is_one_word():
    assert tok("     C                   Z-ADD     0             COUNT") == ["c z-add 0 count"]


def test_qualified_names_split_at_the_dot_and_decimals_stay_whole():
    source = "**free\norderInfo.amount = 7.50 * arr(i).qty + .5;\nds1.x = 100.25;\n"
    assert tok(source) == [
        "orderinfo . amount = 7.50 * arr ( i ) . qty + .5 ;",
        "ds1 . x = 100.25 ;",
    ]


def test_string_literals_and_typed_literals():
    source = "\n".join([
        "**free",
        "msg = 'It''s done' + ' ' + name;",
        "hex = x'1F'; when = d'2024-01-31'; empty = '';",
    ])
    assert tok(source) == [
        "msg = <str> + <str> + name ;",
        "hex = <str> ; when = <str> ; empty = <str> ;",
    ]


def test_literal_continued_on_the_next_line():
    source = "\n".join([
        "**free",
        "msg = 'first part -",
        "second part; // not code' + name;",
        "other = 'unclosed",
        "x = 1;",
    ])
    assert tok(source) == ["msg = <str>", "+ name ;", "other = <str>", "x = 1 ;"]


def test_directives():
    source = "**free\n/copy qrpglesrc,custcpy\n/if defined(TEST)\n/endif\n/free\n/end-free\n"
    assert tok(source) == ["/copy qrpglesrc , custcpy", "/if defined ( test )", "/endif"]


def test_source_text_cannot_forge_the_special_words():
    assert tok("**free\nx = a<nl>b; y = [PAD];\n") == ["x = a < nl > b ; y = [ pad ] ;"]


def test_mixed_program():
    source = "\n".join([
        "      *================================================",
        "      * Program: ORDR01 - order totals",
        "      *================================================",
        "     H DFTACTGRP(*NO) ACTGRP(*CALLER)",
        "     FORDHDR    UF   E           K DISK",
        "     D ORDTOT          S             13P 2 INZ(0)",
        "     D orderInfo       DS                  QUALIFIED",
        "     D  amount                       11P 2",
        "     C     ORDNO         SETLL     ORDHDR",
        "     C     ORDNO         READE     ORDHDR",
        "     C                   DOW       NOT %EOF(ORDHDR)",
        "     C                   EVAL      ORDTOT = ORDTOT + ORDAMT",
        "      /free",
        "        orderInfo.amount += ordAmt; // keep it",
        "        if ordStat = 'O';",
        "          ordStat = 'C';",
        "          update ORDHREC;",
        "        endif;",
        "      /end-free",
        "     C     ORDNO         READE     ORDHDR",
        "     C                   ENDDO",
        "       *inlr = *on;",
        "     C                   RETURN",
    ])
    assert tok(source) == [
        "h dftactgrp ( *no ) actgrp ( *caller )",
        "f ordhdr uf e k disk",
        "d ordtot s 13p 2 inz ( 0 )",
        "d orderinfo ds qualified",
        "d amount 11p 2",
        "c ordno setll ordhdr",
        "c ordno reade ordhdr",
        "c dow not %eof ( ordhdr )",
        "c eval ordtot = ordtot + ordamt",
        "orderinfo . amount += ordamt ;",
        "if ordstat = <str> ;",
        "ordstat = <str> ;",
        "update ordhrec ;",
        "endif ;",
        "c ordno reade ordhdr",
        "c enddo",
        "*inlr = *on ;",
        "c return",
    ]


# ---------------------------------------------------------------------------------------
# Robustness

def test_crlf_and_lone_cr_line_ends():
    lf = "**free\nx = 1;\ny = 2;\n"
    assert tok(lf.replace("\n", "\r\n")) == tok(lf) == ["x = 1 ;", "y = 2 ;"]
    assert tok(lf.replace("\n", "\r")) == tok(lf)
    fixed = "     C                   EVAL      X = 1\r\n     C                   RETURN\r\n"
    assert tok(fixed) == ["c eval x = 1", "c return"]


def test_tabs_are_expanded_before_the_columns():
    # A tab at column 1 reaches column 9: columns 6 and 7 are blank, so this is free code
    # (without the expansion 'dcl-s' would land in the sequence-number columns).
    assert tok("\tdcl-s x int(10);") == ["dcl-s x int ( 10 ) ;"]
    # "     C" then a tab: the opcode starts at column 9, the line is a C spec
    assert tok("     C\tEVAL X = 1") == ["c eval x = 1"]


def test_over_long_lines():
    head = "     C                   EVAL      X = Y"           # 40 columns
    words = tok(head + " + Z" * 50_000)[0].split()
    assert words == ["c", "eval", "x", "=", "y"] + ["+", "z"] * 10     # columns 41-80 only
    free = "**free\nx = y" + " + z" * 50_000 + ";"
    assert len(tok(free)[0].split()) == 3 + 2 * 50_000 + 1


def test_control_characters_and_odd_unicode_never_crash():
    source = "**free\nx\x00= 1;\x0c\ny\u2028= 'a\x85b';\u00a0z = 3;\n\ufffd = 4;"
    assert tok(source) == ["x = 1 ;", "y = <str> ; z = 3 ;", "\ufffd = 4 ;"]
    assert tok("**free\nx\udcff = 1;") == ["x \ufffd = 1 ;"]         # lone surrogate


def test_non_utf8_bytes_are_read_as_latin1(tmp_path):
    path = tmp_path / "legacy.RPGLE"
    path.write_bytes(b"     C* commentaire \xe9t\xe9\n"
                     b"     C                   EVAL      NOM = 'Caf\xe9'\n"
                     b"     C                   EVAL      PRIX\xa3 = 1\n")
    assert tokenize_files([path]) == ["c eval nom = <str>", "c eval prix \xa3 = 1"]


def test_utf8_byte_order_mark(tmp_path):
    path = tmp_path / "bom.sqlrpgle"
    path.write_bytes("\ufeff**free\nexec sql select 1 into :x from sysibm.sysdummy1;\n".encode())
    assert tokenize_files([path]) == [
        "exec sql select 1 into : x from sysibm . sysdummy1 ;"]


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
       st.sampled_from(["", "**free\n", "      /free\n"]))
def test_any_text_gives_well_formed_lines(text, header):
    for line in tok(header + text):
        words = line.split(" ")
        assert line and all(words), repr(line)            # single spaces, no empty word
        assert line.split() == words                      # no other white space anywhere
        assert line == line.lower()
        assert "<nl>" not in words and "[pad]" not in words


# ---------------------------------------------------------------------------------------
# Files and the command line

def test_tokenize_files_in_order_and_extension_any_case(tmp_path):
    first = tmp_path / "a.RpgLe"
    second = tmp_path / "b.rpg"
    first.write_text("**free\nx = 1;\n")
    second.write_text("     C                   RETURN\n")
    assert tokenize_files([second, first]) == ["c return", "x = 1 ;"]


def test_tokenize_files_rejects_bad_paths(tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("x")
    with pytest.raises(RpgSourceError, match=r"notes\.txt.*\.rpgle, \.sqlrpgle or \.rpg"):
        tokenize_files([text_file])
    with pytest.raises(RpgSourceError, match="no such RPG source file"):
        tokenize_files([tmp_path / "missing.rpgle"])
    folder = tmp_path / "folder.rpgle"
    folder.mkdir()
    with pytest.raises(RpgSourceError, match="not a regular file"):
        tokenize_files([folder])


@pytest.fixture
def main(monkeypatch):
    """numpy_ref_cli.main.main with this part's commands registered (the other commands
    are not needed here, and may be mid-edit)."""
    monkeypatch.setattr(cli, "COMMANDS", ["tokenize", "make_corpus"])
    return cli.main


def test_cli_tokenize(tmp_path, main, capsys):
    src = tmp_path / "prog.rpgle"
    src.write_text("     C                   EVAL      X = 1\n"
                   "      * note\n"
                   "     C                   RETURN\n")
    out = tmp_path / "out" / "tokens.txt"
    assert main(["tokenize", str(src), "-o", str(out)]) == 0
    assert out.read_bytes() == b"c eval x = 1\nc return\n"
    assert "2 lines, 7 words (8 counting <nl>)" in capsys.readouterr().out
    assert main(["tokenize", str(src), "-o", str(out)]) == 2          # exists, no --force
    assert "already exists" in capsys.readouterr().err
    assert main(["tokenize", str(src), str(src), "-o", str(out), "--force"]) == 0
    assert out.read_text() == "c eval x = 1\nc return\n" * 2
    assert [p.name for p in out.parent.iterdir()] == ["tokens.txt"]  # no temporary file left


@pytest.mark.parametrize("case", ["extension", "missing", "same", "folder"])
def test_cli_tokenize_bad_input_exits_2(tmp_path, main, capsys, case):
    src = tmp_path / "prog.rpgle"
    src.write_text("**free\nx = 1;\n")
    other = tmp_path / "prog.cbl"
    other.write_text("x")
    args = {
        "extension": [str(other), "-o", str(tmp_path / "o.txt")],
        "missing": [str(tmp_path / "nope.rpgle"), "-o", str(tmp_path / "o.txt")],
        "same": [str(src), "-o", str(src), "--force"],
        "folder": [str(src), "-o", str(tmp_path)],
    }[case]
    assert main(["tokenize"] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("numpy-ref: error: ") and "Traceback" not in err
    assert src.read_text() == "**free\nx = 1;\n"
    assert not os.path.exists(tmp_path / "o.txt")
