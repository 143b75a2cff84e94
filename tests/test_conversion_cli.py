"""`numpy-ref convert` and `numpy-ref info`, and every kind of bad checkpoint input.

Each bad input must give exit code 2 and one message that names the file and the
problem, and must leave nothing behind (no output file, no temporary file).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archive_tools import Pickle, module_pickle, read_members, write_members
from conversion.torch_zip import read_zip_pickle
from numpy_ref.checkpoint import load_checkpoint
from numpy_ref_cli.main import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ORIGINAL = FIXTURES / "original_f32.pt"
TRAIN = FIXTURES / "tiny-training-tokenized.txt"
EVAL = FIXTURES / "tiny-evaluation-tokenized.txt"
VOCAB = ["[PAD]", "if", "x", "=", "1", "<nl>", "eval", "y", "endif", "callp", "foo"]


def flat(text: str) -> str:
    """The text without white space (messages are wrapped at 100 columns)."""
    return "".join(text.split())


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def expect_bad(capsys, tmp_path, source, *phrases, extra=(), named=None):
    """convert must fail with exit 2 and a message naming the file at fault (`named`, else `source`)
    and each phrase; nothing written."""
    before = sorted(p.name for p in tmp_path.iterdir())
    out_path = tmp_path / "out.safetensors"
    code, out, err = run(capsys, "convert", source, "-o", out_path, "--placeholder-vocab", *extra)
    assert code == 2, (out, err)
    assert err.startswith("numpy-ref: error: ") and "Traceback" not in err
    assert flat(str(named or source)) in flat(err), err
    for phrase in phrases:
        assert flat(phrase) in flat(err), f"{phrase!r} not in {err!r}"
    assert not out_path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "something was written"
    return err


def tensor_specs(path=ORIGINAL):
    archive = read_zip_pickle(Path(path).read_bytes(), str(path))
    specs = []
    for i in range(len(archive.root.state)):
        ref = archive.root.state[str(i)]
        specs.append(dict(key=ref.storage.key, storage_type=ref.storage.storage_type.name, numel=ref.storage.numel,
                          offset=ref.offset, size=ref.size, stride=ref.stride, requires_grad=ref.requires_grad))
    return specs


def with_pickle(tmp_path, pickled: bytes, name="forged.pt", drop=()):
    members = read_members(ORIGINAL)
    members["model/data.pkl"] = pickled
    for member in drop:
        del members[member]
    path = tmp_path / name
    write_members(path, members)
    return path


# -- convert and info -------------------------------------------------------------------------


def test_convert_the_original_then_info(capsys, tmp_path):
    out_path = tmp_path / "model.safetensors"
    code, out, err = run(capsys, "convert", ORIGINAL, "-o", out_path, "--vocab-from", TRAIN, EVAL)
    assert code == 0, err
    assert "wrote" in out and "36 float32 tensors" in out and "n_heads=4" in out
    assert "note: n_heads is not in the file: using 4 (--heads to change)" in err
    checkpoint = load_checkpoint(out_path)
    assert checkpoint.vocab == VOCAB and checkpoint.config.d_model == 8

    code, out, err = run(capsys, "info", out_path)
    assert code == 0, err
    assert "format: canonical safetensors" in out
    assert "parameters: 36 tensors, 1,299 scalars" in out
    assert "layers.1.feed_forward.linear2.weight  8x12" in out
    assert "vocabulary: 11 words (the file); first: [PAD] if x = 1 <nl>" in out

    code, out, err = run(capsys, "info", FIXTURES / "original_f16_big.pt", "--heads", "2")
    assert code == 0, err
    assert "libtorch archive" in out and "byte order big" in out and "float16" in out
    assert "n_heads      2              (--heads)" in out and "NO VOCABULARY" in out


def test_convert_needs_a_vocabulary_or_placeholder(capsys, tmp_path):
    out_path = tmp_path / "model.safetensors"
    code, _, err = run(capsys, "convert", ORIGINAL, "-o", out_path)
    assert code == 2 and "--vocab-from TRAIN EVAL" in err and not out_path.exists()
    code, _, err = run(capsys, "convert", ORIGINAL, "-o", out_path, "--placeholder-vocab")
    assert code == 0 and "NO VOCABULARY" in err
    assert load_checkpoint(out_path).vocab[:3] == ["[PAD]", "[ID1]", "[ID2]"]


@pytest.mark.parametrize("form", ["json", "lines"])
def test_convert_with_a_vocabulary_file(capsys, tmp_path, form):
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text(json.dumps(VOCAB) if form == "json" else "\n".join(VOCAB) + "\n", encoding="utf-8")
    out_path = tmp_path / "model.safetensors"
    code, _, err = run(capsys, "convert", FIXTURES / "state_dict_f32.pt", "-o", out_path, "--vocab", vocab_file)
    assert code == 0, err
    assert load_checkpoint(out_path).vocab == VOCAB


def test_convert_never_overwrites_without_force(capsys, tmp_path):
    out_path = tmp_path / "model.safetensors"
    out_path.write_bytes(b"precious")
    code, _, err = run(capsys, "convert", ORIGINAL, "-o", out_path, "--placeholder-vocab")
    assert code == 2 and "already exists; pass --force" in err and out_path.read_bytes() == b"precious"
    code, _, err = run(capsys, "convert", ORIGINAL, "-o", out_path, "--placeholder-vocab", "--force")
    assert code == 0 and load_checkpoint(out_path).config.vocab_size == 11
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_convert_with_a_config_file(capsys, tmp_path):
    config_file = tmp_path / "config.json"
    config_file.write_text('{"n_heads": 8, "ln_eps": 1e-6}')
    out_path = tmp_path / "model.safetensors"
    code, _, err = run(capsys, "convert", ORIGINAL, "-o", out_path, "--config", config_file, "--placeholder-vocab")
    assert code == 0, err
    config = load_checkpoint(out_path).config
    assert config.n_heads == 8 and config.ln_eps == 1e-6


def test_console_script_exit_code(tmp_path):
    script = Path(sys.executable).parent / "numpy-ref"
    if not script.exists():
        pytest.skip("the numpy-ref console script is not installed in this environment")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    completed = subprocess.run([str(script), "convert", str(bad), "-o", str(tmp_path / "x.safetensors")],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert "numpy-ref: error:" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "x.safetensors").exists()


# -- bad input: the file itself ----------------------------------------------------------------


def test_not_a_zip_and_unknown_types(capsys, tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello, I am a text file\n")
    expect_bad(capsys, tmp_path, text, "unknown file type")
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    expect_bad(capsys, tmp_path, png, "unknown file type")
    fake_zip = tmp_path / "fake.pt"
    fake_zip.write_bytes(b"PK\x03\x04" + bytes(100))
    expect_bad(capsys, tmp_path, fake_zip, "is not a readable zip archive")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    expect_bad(capsys, tmp_path, empty, "is empty")
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02" + bytes(40))
    expect_bad(capsys, tmp_path, legacy, "legacy torch.save format")
    expect_bad(capsys, tmp_path, tmp_path / "missing.pt", "no such file")
    converted = tmp_path / "converted.safetensors"
    assert main(["convert", str(ORIGINAL), "-o", str(converted), "--placeholder-vocab"]) == 0
    capsys.readouterr()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(converted.read_bytes()[:100])
    converted.unlink()
    expect_bad(capsys, tmp_path, cut, "looks like a safetensors file", "truncated")
    folder = tmp_path / "folder.pt"
    folder.mkdir()
    expect_bad(capsys, tmp_path, folder, "is a folder")


def test_truncated_zip(capsys, tmp_path):
    data = ORIGINAL.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 200):
        path = tmp_path / f"truncated{cut}.pt"
        path.write_bytes(data[:cut])
        expect_bad(capsys, tmp_path, path, "zip archive", "truncated")


def test_a_member_missing(capsys, tmp_path):
    members = read_members(ORIGINAL)
    del members["model/data/5"]
    path = tmp_path / "no_storage.pt"
    write_members(path, members)
    expect_bad(capsys, tmp_path, path, "refers to storage '5'", "no member 'model/data/5'")
    members = read_members(ORIGINAL)
    del members["model/data.pkl"]
    path = tmp_path / "no_pickle.pt"
    write_members(path, members)
    expect_bad(capsys, tmp_path, path, "without a '<folder>/data.pkl' member")


# -- bad input: forbidden globals (nothing may run) ----------------------------------------------


def marker_command(tmp_path):
    marker = tmp_path / "PWNED"
    return marker, f"touch {marker}"


def test_forbidden_global_at_the_top(capsys, tmp_path):
    marker, command = marker_command(tmp_path)
    pickled = Pickle().global_("os", "system").mark().text(command).tuple_().reduce().stop()
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, pickled), "global os.system", "Nothing from the file was run")
    assert not marker.exists()


def test_forbidden_global_through_stack_global_protocol_4(capsys, tmp_path):
    marker, command = marker_command(tmp_path)
    def short(text):
        return b"\x8c" + bytes([len(text)]) + text.encode()
    pickled = (b"\x80\x04" + short("builtins") + short("eval") + b"\x93" + short(f"__import__('os').system('{command}')")
               + b"\x85R.")
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, pickled), "global builtins.eval")
    assert not marker.exists()


def test_forbidden_global_nested_inside_the_module_state(capsys, tmp_path):
    marker, command = marker_command(tmp_path)
    extra = Pickle()
    extra.parts = []  # raw opcodes spliced into the state dict: '36': posix.system(command)
    extra.text("36").global_("posix", "system").mark().text(command).tuple_().reduce()
    pickled = module_pickle(tensor_specs(), extra_items=b"".join(extra.parts))
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, pickled), "global posix.system")
    assert not marker.exists()


def test_forbidden_global_as_a_storage_type(capsys, tmp_path):
    specs = tensor_specs()
    specs[7]["storage_global"] = ("subprocess", "Popen")
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, module_pickle(specs)), "global subprocess.Popen")


def test_torch_internals_that_call_functions_are_refused(capsys, tmp_path):
    # torch._utils._rebuild_from_type_v2 would call whatever function it is given
    pickled = module_pickle(tensor_specs(), module=("torch._utils", "_rebuild_from_type_v2"))
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, pickled), "global torch._utils._rebuild_from_type_v2")


def test_forbidden_global_patched_into_the_real_pickle(capsys, tmp_path):
    members = read_members(ORIGINAL)
    members["model/data.pkl"] = members["model/data.pkl"].replace(
        b"ctorch._utils\n_rebuild_tensor_v2\n", b"cbuiltins\nexec\n")
    path = tmp_path / "patched.pt"
    write_members(path, members)
    expect_bad(capsys, tmp_path, path, "global builtins.exec")


def test_unsupported_storage_type_is_named(capsys, tmp_path):
    specs = tensor_specs()
    specs[4]["storage_global"] = ("torch", "UntypedStorage")
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, module_pickle(specs)), "storage type torch.UntypedStorage",
               "not support")


def test_scripted_modules_and_foreign_opcodes_are_refused(capsys, tmp_path):
    pickled = module_pickle(tensor_specs(), module=("__torch__.my_model", "Net"))
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, pickled, "scripted.pt"), "TorchScript object of class __torch__.my_model.Net")
    marker, command = marker_command(tmp_path)
    pickled = b"\x80\x02(" + b"X" + struct.pack("<I", len(command)) + command.encode() + b"ios\nsystem\n."
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, pickled, "inst.pt"), "opcode INST")
    assert not marker.exists()


# -- bad input: tensors that do not fit their storage -------------------------------------------


def test_storage_shorter_than_declared(capsys, tmp_path):
    members = read_members(ORIGINAL)
    members["model/data/3"] = members["model/data/3"][:16]
    path = tmp_path / "short_storage.pt"
    write_members(path, members)
    expect_bad(capsys, tmp_path, path, "storage '3'", "holds 16 bytes", "8 float32 elements (32 bytes)")


def test_tensor_larger_than_its_storage(capsys, tmp_path):
    specs = tensor_specs()
    specs[3].update(size=(8, 8), stride=(8, 1))  # q.bias storage holds 8 floats
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, module_pickle(specs)),
               "reaches element 63 of storage '3', which holds only 8")


@pytest.mark.parametrize("change, phrase", [
    (dict(stride=(2,)), "stride [2] and storage offset 0 reaches element 14"),
    (dict(offset=5), "storage offset 5 reaches element 12"),
    (dict(offset=2**40), "reaches element"),
    (dict(stride=(-1,)), "not a non-negative integer"),
    (dict(size=(8, 1), stride=(1,)), "2 sizes and 1 strides"),
])
def test_stride_or_offset_outside_the_storage(capsys, tmp_path, change, phrase):
    specs = tensor_specs()
    specs[3].update(change)
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, module_pickle(specs)), phrase)


# -- bad input: tensors that do not fit SPEC ---------------------------------------------------


def test_wrong_tensor_count(capsys, tmp_path):
    specs = tensor_specs()
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, module_pickle(specs[:-1]), "35.pt"),
               "holds 35 tensor(s)", "20 for 1 layer, 36 for 2")


def test_shape_that_does_not_fit_spec_order(capsys, tmp_path):
    specs = tensor_specs()
    specs[2], specs[3] = specs[3], specs[2]  # q.bias where q.weight belongs
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, module_pickle(specs), "swapped.pt"),
               "tensor 2 should be layers.0.attention.q.weight", "shape [8, 8]", "but has shape [8]")
    specs = tensor_specs()
    specs[0], specs[35] = specs[35], specs[0]
    expect_bad(capsys, tmp_path, with_pickle(tmp_path, module_pickle(specs), "first.pt"),
               "tensor 0 (embed.weight in SPEC's order) has shape [11]", "expected [V, E]")


@pytest.mark.parametrize("name, value", [("layers.0.norm1.bias", np.nan), ("embed.weight", np.inf),
                                         ("final_layer.bias", -np.inf)])
def test_nan_or_inf_weights_name_the_tensor(capsys, tmp_path, name, value):
    from numpy_ref.config import ModelConfig
    from numpy_ref.schema import parameter_shapes

    index = list(parameter_shapes(ModelConfig(vocab_size=11, d_model=8, d_ff=12, max_seq_len=6))).index(name)
    specs = tensor_specs()
    members = read_members(ORIGINAL)
    member = f"model/data/{specs[index]['key']}"
    values = np.frombuffer(members[member], dtype="<f4").copy()
    values[1] = value
    members[member] = values.tobytes()
    path = tmp_path / "nan.pt"
    write_members(path, members)
    expect_bad(capsys, tmp_path, path, f"tensor '{name}' holds 1 NaN or infinite value(s)")


def test_vocabulary_of_the_wrong_size(capsys, tmp_path):
    vocab_file = tmp_path / "vocab.json"
    vocab_file.write_text(json.dumps(VOCAB + ["extra"]))
    err = expect_bad(capsys, tmp_path, ORIGINAL, "12 words", "vocab_size=11", extra=("--vocab", vocab_file))
    assert flat(str(vocab_file)) in flat(err)
    short_eval = tmp_path / "eval.txt"
    short_eval.write_text("if\n")
    err = expect_bad(capsys, tmp_path, ORIGINAL, "9 words", "vocab_size=11", extra=("--vocab-from", TRAIN, short_eval))
    lines = tmp_path / "lines.txt"
    lines.write_text("[PAD]\nif\n\nx\n")
    expect_bad(capsys, tmp_path, ORIGINAL, "line 3 is empty", extra=("--vocab", lines), named=lines)


def test_bad_config_and_heads(capsys, tmp_path):
    expect_bad(capsys, tmp_path, ORIGINAL, "divisible by n_heads (3)", extra=("--heads", "3"))
    config_file = tmp_path / "config.json"
    config_file.write_text('{"d_model": 16}')
    expect_bad(capsys, tmp_path, ORIGINAL, "tensor 0 should be embed.weight", "[11, 16]", extra=("--config", config_file))
    config_file.write_text('{"heads": 2}')
    expect_bad(capsys, tmp_path, ORIGINAL, "unknown config field(s) heads", extra=("--config", config_file),
               named=config_file)


def test_info_reports_bad_input_the_same_way(capsys, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(ORIGINAL.read_bytes()[:1000])
    code, out, err = run(capsys, "info", bad)
    assert code == 2 and flat(str(bad)) in flat(err) and out == ""
