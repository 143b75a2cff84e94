"""numpy_ref imports and runs where PyTorch cannot be imported."""

import textwrap

from conftest import run_without_torch


def test_numpy_ref_runs_where_importing_torch_fails(checkpoint, tmp_path):
    from numpy_ref.checkpoint import save_checkpoint

    checkpoint_path = tmp_path / "model.safetensors"  # the checkpoint under test, in canonical form
    save_checkpoint(checkpoint_path, checkpoint.params, checkpoint.config, checkpoint.vocab)
    script = textwrap.dedent(f"""
        import sys

        import numpy as np
        import numpy_ref
        from numpy_ref.parity import compare_traces

        model = numpy_ref.load({str(checkpoint_path)!r}, dtype="float64")
        ids = np.array([[1, 2, 3]])
        logits, trace = model.run_with_trace(ids)
        assert logits.shape == (1, 3, model.config.vocab_size)
        assert list(trace) == numpy_ref.trace_names(model.config.n_layers)
        f32 = numpy_ref.load({str(checkpoint_path)!r}, dtype="float32")
        rows = compare_traces(f32.run_with_trace(ids)[1], {{k: v.astype("float32") for k, v in trace.items()}}, "float32")
        assert all(row.ok for row in rows), [r for r in rows if not r.ok]
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
        print("ran without torch")
    """)
    result = run_without_torch(script)
    assert result.returncode == 0, result.stderr
    assert "ran without torch" in result.stdout
