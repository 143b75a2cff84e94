"""Reading the original program's checkpoint (and torch.save files) without torch, checked against torch.

The fixtures in tests/fixtures/ were written by libtorch itself (`make fixture`:
tools/write_original calls torch::save(std::vector<Tensor>) exactly as hasktorch's
Serialize.save does): 36 tensors (so "10" sorts before "2" as a string), views
(transposed, narrowed, a shared storage), float64/float16/bfloat16 storages,
requires_grad, and big-endian copies made by byte-swapping.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from archive_tools import archive_bytes, module_pickle, read_members, to_big_endian, write_members
from conversion import load_any, load_detailed, read_original
from conversion.torch_zip import read_zip_pickle
from numpy_ref.checkpoint import load_checkpoint, save_checkpoint
from numpy_ref.config import ModelConfig
from numpy_ref.errors import CheckpointError
from numpy_ref.schema import parameter_shapes

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
LITTLE = ["original_f32.pt", "original_views.pt", "original_f64.pt", "original_f16.pt", "original_bf16.pt",
          "original_requires_grad.pt"]
BIG = {"original_views_big.pt": "original_views.pt", "original_f64_big.pt": "original_f64.pt",
       "original_f16_big.pt": "original_f16.pt"}
CONFIG = ModelConfig(vocab_size=11, d_model=8, n_heads=4, d_ff=12, n_layers=2, max_seq_len=6)
NAMES = list(parameter_shapes(CONFIG))
TRAIN = FIXTURES / "tiny-training-tokenized.txt"
EVAL = FIXTURES / "tiny-evaluation-tokenized.txt"

NO_TORCH = """
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this process")
        return None
sys.meta_path.insert(0, BlockTorch())
"""


def jit_tensors(path):
    """The tensors of an original file as torch.jit.load reads them, in order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "torch.jit.load is deprecated" (torch 2.13)
        module = torch.jit.load(str(path))
    count = len(list(module.parameters()))
    return [getattr(module, str(i)) for i in range(count)]


def as_numpy(tensor):
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


@pytest.fixture(scope="module")
def read_without_torch(tmp_path_factory):
    """Every fixture read (and the f32 one converted and run) in a child process where torch cannot be imported."""
    out = tmp_path_factory.mktemp("no_torch")
    script = NO_TORCH + textwrap.dedent(f"""
        import json, numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from conversion import read_original, load_any
        import numpy_ref
        from numpy_ref.checkpoint import save_checkpoint
        out = {str(out)!r}
        names = {LITTLE + list(BIG)!r}
        meta = {{}}
        for name in names:
            original = read_original({str(FIXTURES)!r} + "/" + name)
            np.savez(out + "/" + name + ".npz", *original.arrays)
            meta[name] = dict(dtypes=original.dtypes, requires_grad=original.requires_grad, folder=original.folder,
                              byteorder=original.byteorder, views=original.views)
        checkpoint, notes = load_any({str(FIXTURES / 'original_f32.pt')!r},
                                     vocab_from=({str(TRAIN)!r}, {str(EVAL)!r}))
        save_checkpoint(out + "/f32.safetensors", checkpoint.params, checkpoint.config, checkpoint.vocab)
        logits = numpy_ref.load(out + "/f32.safetensors", dtype="float64")(np.array([[1, 2, 3, 4, 5, 6]]))
        np.save(out + "/logits.npy", logits)
        try:
            import torch
            meta["torch_importable"] = True
        except ImportError:
            meta["torch_importable"] = False
        meta["torch_loaded"] = any(m == "torch" or m.startswith("torch.") for m in sys.modules)
        meta["notes"] = notes
        json.dump(meta, open(out + "/meta.json", "w"))
    """)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta.pop("torch_importable") is False and meta.pop("torch_loaded") is False
    return out, meta


def arrays_of(out, name):
    with np.load(out / f"{name}.npz") as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


@pytest.mark.parametrize("name", LITTLE)
def test_every_tensor_bit_for_bit_against_torch_jit_load(read_without_torch, name):
    out, meta = read_without_torch
    ours = arrays_of(out, name)
    theirs = jit_tensors(FIXTURES / name)
    assert len(ours) == len(theirs) == 36
    for index, (array, tensor) in enumerate(zip(ours, theirs)):
        expected = as_numpy(tensor)
        assert array.shape == expected.shape, index
        assert array.dtype == expected.dtype, index
        assert array.tobytes() == expected.tobytes(), f"tensor {index} of {name} differs"
        assert meta[name]["requires_grad"][index] == tensor.requires_grad
        assert meta[name]["dtypes"][index] == str(tensor.dtype).replace("torch.", "")
    assert meta[name]["folder"] == "model"  # saved as model.pt, renamed: the folder is not the file's stem
    assert meta[name]["byteorder"] == "little"


@pytest.mark.parametrize("big, little", sorted(BIG.items()))
def test_big_endian_copies_read_the_same(read_without_torch, big, little):
    # torch.jit.load ignores the byteorder record (it reads big-endian storages as little-endian),
    # so the big-endian copies are checked against jit.load of their little-endian originals.
    out, meta = read_without_torch
    assert meta[big]["byteorder"] == "big"
    ours = arrays_of(out, big)
    for index, (array, tensor) in enumerate(zip(ours, jit_tensors(FIXTURES / little))):
        expected = as_numpy(tensor)
        assert array.dtype == expected.dtype and array.dtype.isnative
        assert array.tobytes() == expected.tobytes(), f"tensor {index} of {big} differs"


def test_big_endian_byte_swap_agrees_with_torch_load(tmp_path):
    # torch.load does honour the byteorder record of torch.save files: an independent check of the swap.
    state = OrderedDict(a=torch.randn(3, 4), b=torch.randn(5, dtype=torch.float64),
                        c=torch.randn(2, 3, dtype=torch.float16), d=torch.randn(4, 6).t())
    torch.save(state, tmp_path / "little.pt")
    to_big_endian(tmp_path / "little.pt", tmp_path / "big.pt")
    reference = torch.load(tmp_path / "big.pt")
    archive = read_zip_pickle((tmp_path / "big.pt").read_bytes(), "big.pt")
    assert archive.byteorder == "big"
    from conversion.tensors import materialize

    for key, tensor in reference.items():
        assert torch.equal(tensor, state[key])
        ours = materialize(archive.root[key], archive.byteorder)
        assert ours.tobytes() == tensor.contiguous().numpy().tobytes()


def test_views_are_stored_as_views_and_read_as_their_values():
    archive = read_zip_pickle((FIXTURES / "original_views.pt").read_bytes(), "views")
    refs = [archive.root.state[str(i)] for i in range(36)]
    assert refs[0].offset > 0 and refs[0].stride == (11, 1)                 # narrowed embed
    assert refs[2].stride == (1, 8)                                         # transposed q.weight
    assert refs[NAMES.index("layers.1.feed_forward.linear1.weight")].stride == (1, 12)
    k, v = NAMES.index("layers.0.attention.k.bias"), NAMES.index("layers.0.attention.v.bias")
    assert refs[k].storage is refs[v].storage and refs[v].offset == 8     # one storage, two tensors
    assert len(archive.storages) == 35
    plain, views = read_original(FIXTURES / "original_f32.pt"), read_original(FIXTURES / "original_views.pt")
    for a, b in zip(plain.arrays, views.arrays):
        assert np.array_equal(a, b) and b.flags.c_contiguous
    assert sum(views.views) == 7


def test_keys_are_ordered_by_number_not_as_strings(tmp_path):
    members = read_members(FIXTURES / "original_f32.pt")
    archive = read_zip_pickle((FIXTURES / "original_f32.pt").read_bytes(), "f32")
    specs = [spec_of(archive.root.state[str(i)]) for i in range(36)]
    # the same tensors with the module's items written in string order: "0", "1", "10", "11", ..., "2", ...
    order = sorted(range(36), key=str)
    pickled = module_pickle_in_order(specs, order)
    members["model/data.pkl"] = pickled
    write_members(tmp_path / "shuffled.pt", members)
    shuffled, plain = read_original(tmp_path / "shuffled.pt"), read_original(FIXTURES / "original_f32.pt")
    for a, b in zip(shuffled.arrays, plain.arrays):
        assert np.array_equal(a, b)


def spec_of(ref):
    return dict(key=ref.storage.key, storage_type=ref.storage.storage_type.name, numel=ref.storage.numel,
                offset=ref.offset, size=ref.size, stride=ref.stride, requires_grad=ref.requires_grad)


def module_pickle_in_order(specs, order):
    from archive_tools import Pickle

    p = Pickle().global_("__torch__", "Module").empty_tuple().newobj().empty_dict().mark()
    for index in order:
        p.text(str(index)).tensor(**specs[index])
    return p.setitems().build().stop()


def test_hand_built_pickle_reproduces_the_fixture(tmp_path):
    members = read_members(FIXTURES / "original_views.pt")
    archive = read_zip_pickle((FIXTURES / "original_views.pt").read_bytes(), "views")
    members["model/data.pkl"] = module_pickle([spec_of(archive.root.state[str(i)]) for i in range(36)])
    write_members(tmp_path / "rebuilt.pt", members)
    for a, b in zip(read_original(tmp_path / "rebuilt.pt").arrays, read_original(FIXTURES / "original_views.pt").arrays):
        assert np.array_equal(a, b)


def one_tensor_archive(tmp_path, spec, data: bytes):
    members = OrderedDict([("m/data.pkl", module_pickle([spec])), ("m/data/0", data), ("m/byteorder", b"little")])
    path = tmp_path / "one.pt"
    path.write_bytes(archive_bytes(members))
    return path


def test_expanded_view_with_stride_zero_is_read(tmp_path):
    spec = dict(key="0", storage_type="FloatStorage", numel=2, offset=1, size=(3, 4), stride=(0, 0))
    path = one_tensor_archive(tmp_path, spec, np.array([1.5, 2.5], dtype="<f4").tobytes())
    assert np.array_equal(read_original(path).arrays[0], np.full((3, 4), 2.5, dtype=np.float32))


def test_huge_expanded_view_is_refused_before_allocating(tmp_path):
    spec = dict(key="0", storage_type="FloatStorage", numel=1, offset=0, size=(100000, 100000), stride=(0, 0))
    path = one_tensor_archive(tmp_path, spec, b"\0\0\0\0")
    with pytest.raises(CheckpointError, match="expanded view"):
        read_original(path)


# -- conversion and the forward pass ---------------------------------------------------------

FORWARD_CASES = [("original_f32.pt", "original_f32.pt"), ("original_views.pt", "original_views.pt"),
                 ("original_f64.pt", "original_f64.pt"), ("original_f16.pt", "original_f16.pt"),
                 ("original_bf16.pt", "original_bf16.pt"), ("original_requires_grad.pt", "original_requires_grad.pt"),
                 ("original_views_big.pt", "original_views.pt"), ("original_f64_big.pt", "original_f64.pt")]
IDS = np.array([[1, 2, 3, 4, 5, 6], [0, 9, 10, 5, 5, 1]])
MAX_ERRORS = {}


@pytest.mark.parametrize("dtype, tolerance", [("float32", 2e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("name, torch_name", FORWARD_CASES)
def test_converted_checkpoint_runs_like_torch_on_the_same_weights(tmp_path, name, torch_name, dtype, tolerance):
    import numpy_ref
    from torch_model import Decoder

    checkpoint, notes = load_any(FIXTURES / name, vocab_from=(TRAIN, EVAL))
    path = tmp_path / "converted.safetensors"
    save_checkpoint(path, checkpoint.params, checkpoint.config, checkpoint.vocab)
    assert load_checkpoint(path).config == CONFIG
    model = numpy_ref.load(path, dtype=dtype)
    # torch's side: the weights as torch.jit.load reads them (not through our reader), float32 as canonical
    weights = {n: as_numpy(t).astype(np.float32) for n, t in zip(NAMES, jit_tensors(FIXTURES / torch_name))}
    reference = Decoder.from_params(CONFIG, weights, dtype=getattr(torch, dtype))
    for ids in (IDS, IDS[:, :3], IDS[:1, :1]):
        ours = model(ids)
        with torch.no_grad():
            theirs = reference(torch.from_numpy(ids)).numpy()
        assert ours.shape == (ids.shape[0], ids.shape[1], 11)
        error = float(np.max(np.abs(ours - theirs)))
        MAX_ERRORS[(name, dtype)] = max(error, MAX_ERRORS.get((name, dtype), 0.0))
        assert error <= tolerance, f"{name} in {dtype}: max |logits difference| {error}"


def test_forward_ran_without_torch_too(read_without_torch):
    import numpy_ref

    out, meta = read_without_torch
    assert any("vocabulary: 11 words rebuilt from" in note for note in meta["notes"])
    reference = numpy_ref.load(out / "f32.safetensors", dtype="float64")(np.array([[1, 2, 3, 4, 5, 6]]))
    assert np.array_equal(np.load(out / "logits.npy"), reference)


def test_notes_say_what_was_chosen():
    result = load_detailed(FIXTURES / "original_f64_big.pt")
    text = "\n".join(result.notes)
    assert "n_heads is not in the file: using 4" in text
    assert "cast 36 tensor(s) from float64 to float32" in text
    assert "big-endian" in text
    assert "NO VOCABULARY" in text and result.checkpoint.vocab[:2] == ["[PAD]", "[ID1]"]
    assert result.config_origin["n_heads"] == "default" and result.config_origin["d_model"] == "the tensors' shapes"
    assert "requires_grad=True" in "\n".join(load_detailed(FIXTURES / "original_requires_grad.pt").notes)


def test_heads_and_config_file_are_used(tmp_path):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"ln_eps": 1e-6, "mask_value": -1e4}))
    checkpoint, notes = load_any(FIXTURES / "original_f32.pt", heads=2, config_file=config_file)
    assert checkpoint.config.n_heads == 2 and checkpoint.config.ln_eps == 1e-6 and checkpoint.config.mask_value == -1e4
    assert not any("n_heads is not in the file" in note for note in notes)


def test_vocabulary_from_the_tokenized_files():
    checkpoint, _ = load_any(FIXTURES / "original_f32.pt", vocab_from=(TRAIN, EVAL))
    assert checkpoint.vocab == ["[PAD]", "if", "x", "=", "1", "<nl>", "eval", "y", "endif", "callp", "foo"]


# -- torch.save files and safetensors ---------------------------------------------------------


def test_state_dict_fixture_matches_the_original():
    checkpoint, _ = load_any(FIXTURES / "state_dict_f32.pt")
    original = read_original(FIXTURES / "original_f32.pt")
    for name, array in zip(NAMES, original.arrays):
        assert np.array_equal(checkpoint.params[name], array)


def test_torch_save_of_a_model_state_dict(tmp_path):
    from torch_model import Decoder

    torch.manual_seed(0)
    config = ModelConfig(vocab_size=13, d_model=12, n_heads=3, d_ff=20, n_layers=3, max_seq_len=7)
    model = Decoder(config)
    torch.save(model.state_dict(), tmp_path / "model.pth")   # has _metadata: a BUILD on the OrderedDict
    checkpoint, notes = load_any(tmp_path / "model.pth", heads=3)
    assert checkpoint.config == config
    for name, array in model.numpy_params().items():
        assert np.array_equal(checkpoint.params[name], array)


def test_torch_save_variants(tmp_path):
    original = read_original(FIXTURES / "original_f32.pt")
    tensors = [torch.from_numpy(a.copy()) for a in original.arrays]
    # a list of tensors (taken in SPEC's order), float64
    torch.save([t.double() for t in tensors], tmp_path / "list.pt")
    checkpoint, notes = load_any(tmp_path / "list.pt")
    assert all(np.array_equal(checkpoint.params[n], a) for n, a in zip(NAMES, original.arrays))
    assert any("list of tensors" in note for note in notes) and any("float64" in note for note in notes)
    # a training checkpoint holding the state_dict under "state_dict", as parameters (requires_grad)
    params = OrderedDict((n, torch.nn.Parameter(t.clone())) for n, t in zip(NAMES, tensors))
    torch.save({"state_dict": params, "epoch": 3, "optimizer": {"lr": 3e-4}}, tmp_path / "train.bin")
    checkpoint, notes = load_any(tmp_path / "train.bin")
    assert all(np.array_equal(checkpoint.params[n], a) for n, a in zip(NAMES, original.arrays))
    assert any("'state_dict'" in note for note in notes) and any("requires_grad" in note for note in notes)
    # half precision, non-contiguous
    torch.save(OrderedDict((n, t.half().t().contiguous().t() if t.dim() == 2 else t.half())
                           for n, t in zip(NAMES, tensors)), tmp_path / "half.pt")
    checkpoint, _ = load_any(tmp_path / "half.pt")
    for n, t in zip(NAMES, tensors):
        assert np.array_equal(checkpoint.params[n], t.half().float().numpy())


def test_bare_safetensors_with_canonical_names(tmp_path):
    import safetensors.numpy

    original = read_original(FIXTURES / "original_f32.pt")
    safetensors.numpy.save_file(dict(zip(NAMES, original.arrays)), str(tmp_path / "bare.safetensors"))
    result = load_detailed(tmp_path / "bare.safetensors", vocab_from=(TRAIN, EVAL))
    assert result.format == "safetensors without the canonical metadata"
    assert result.checkpoint.config == CONFIG and result.checkpoint.vocab[1] == "if"


def test_canonical_safetensors_pass_through_and_flags_override(tmp_path):
    checkpoint, _ = load_any(FIXTURES / "original_f32.pt", vocab_from=(TRAIN, EVAL))
    path = tmp_path / "canonical.safetensors"
    save_checkpoint(path, checkpoint.params, checkpoint.config, checkpoint.vocab)
    again, notes = load_any(path)
    assert notes == [] and again.config == checkpoint.config and again.vocab == checkpoint.vocab
    assert all(np.array_equal(again.params[n], checkpoint.params[n]) for n in NAMES)
    changed, notes = load_any(path, heads=8)
    assert changed.config.n_heads == 8 and any("the file says 4; using 8 from --heads" in n for n in notes)
    placeholder = tmp_path / "words.txt"
    placeholder.write_text("\n".join(f"w{i}" for i in range(11)) + "\n")
    relabelled, notes = load_any(path, vocab_file=placeholder)
    assert relabelled.vocab[3] == "w3" and any("replaced" in n for n in notes)


def test_reading_does_not_depend_on_the_file_name(tmp_path):
    for suffix in (".bin", ".safetensors", ""):
        target = tmp_path / f"renamed{suffix}"
        target.write_bytes((FIXTURES / "original_f32.pt").read_bytes())
        assert load_detailed(target).format.startswith("libtorch archive")
