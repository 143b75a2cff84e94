"""The one naming: SPEC's parameter table and trace list, written out here by hand from SPEC."""

import pytest

from numpy_ref.config import ModelConfig
from numpy_ref.errors import ConfigError
from numpy_ref.schema import parameter_count, parameter_shapes, trace_names


def spec_block_trace(i):
    a = f"layers.{i}.attention."
    return [a + "q", a + "k", a + "v", a + "q_heads", a + "k_heads", a + "v_heads", a + "scores_raw",
            a + "scores_scaled", a + "mask", a + "scores_masked", a + "weights", a + "context",
            a + "context_merged", a + "out", f"layers.{i}.residual1", f"layers.{i}.norm1",
            f"layers.{i}.feed_forward.hidden_pre", f"layers.{i}.feed_forward.hidden",
            f"layers.{i}.feed_forward.out", f"layers.{i}.residual2", f"layers.{i}.norm2"]


def test_trace_names_are_exactly_spec_list():
    expected = ["embed.tokens", "embed.pos", "embed.out"] + spec_block_trace(0) + spec_block_trace(1) + ["logits"]
    assert trace_names(2) == expected
    assert len(trace_names(3)) == 3 + 3 * 21 + 1


def test_parameters_follow_the_original_files_order_and_shapes():
    shapes = parameter_shapes(ModelConfig(vocab_size=500))
    block = [("attention.q.weight", (64, 64)), ("attention.q.bias", (64,)),
             ("attention.k.weight", (64, 64)), ("attention.k.bias", (64,)),
             ("attention.v.weight", (64, 64)), ("attention.v.bias", (64,)),
             ("attention.out.weight", (64, 64)), ("attention.out.bias", (64,)),
             ("norm1.weight", (64,)), ("norm1.bias", (64,)),
             ("feed_forward.linear1.weight", (256, 64)), ("feed_forward.linear1.bias", (256,)),
             ("feed_forward.linear2.weight", (64, 256)), ("feed_forward.linear2.bias", (64,)),
             ("norm2.weight", (64,)), ("norm2.bias", (64,))]
    expected = [("embed.weight", (500, 64)), ("pos_encoding", (1, 64, 64))]
    expected += [(f"layers.0.{n}", s) for n, s in block] + [(f"layers.1.{n}", s) for n, s in block]
    expected += [("final_layer.weight", (500, 64)), ("final_layer.bias", (500,))]
    assert list(shapes.items()) == expected
    assert len(shapes) == 36 == parameter_count(2)


def test_torch_state_dict_keys_are_the_canonical_names():
    """Same names and shapes (PyTorch lists a module's own parameters before its children's,
    so the order is taken from the schema wherever it matters)."""
    import torch_model

    config = ModelConfig(vocab_size=30, n_layers=3, d_model=32, d_ff=48)
    model = torch_model.Decoder(config)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == parameter_shapes(config)
    assert list(model.numpy_params()) == list(parameter_shapes(config))


def test_config_round_trips_through_json():
    config = ModelConfig(vocab_size=7, d_model=32, n_heads=8, d_ff=48, n_layers=1, max_seq_len=16)
    assert ModelConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("fields, words", [
    (dict(d_model=64, n_heads=5), "divisible"),
    (dict(n_layers=0), "n_layers"),
    (dict(pad_id=10), "pad_id"),
    (dict(ln_eps=0.0), "ln_eps"),
    (dict(mask_value=float("nan")), "mask_value"),
    (dict(d_ff=2.5), "d_ff"),
])
def test_invalid_configs_are_refused_with_the_field_named(fields, words):
    with pytest.raises(ConfigError, match=words):
        ModelConfig(vocab_size=10, **fields)


def test_config_from_dict_names_missing_and_unknown_fields():
    data = ModelConfig(vocab_size=10).to_dict()
    del data["d_ff"]
    data["dropout"] = 0.1
    with pytest.raises(ConfigError, match="missing d_ff.*unknown dropout"):
        ModelConfig.from_dict(data)
