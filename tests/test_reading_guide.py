"""The reading guide cites only functions and trace names that exist."""

import importlib
import re
from pathlib import Path

from numpy_ref.schema import trace_names

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "reading_guide.md"


def test_every_cited_function_exists():
    cited = set(re.findall(r"`(numpy_ref(?:\.\w+)+)`", GUIDE.read_text()))
    assert len(cited) >= 15
    for dotted in sorted(cited):
        module_name, _, attribute = dotted.rpartition(".")
        try:
            module = importlib.import_module(dotted)  # a module cited by name
        except ImportError:
            module = getattr(importlib.import_module(module_name), attribute)
        assert module is not None, dotted


def test_every_cited_trace_name_exists_and_every_step_of_block_0_is_cited():
    text = GUIDE.read_text()
    known = set(trace_names(2))
    cited = {name for name in re.findall(r"`((?:embed|layers|logits)[\w.]*)`", text) if not name.endswith(".")}
    assert cited <= known, sorted(cited - known)
    block0 = {name for name in known if not name.startswith("layers.1.")}
    assert block0 <= cited, sorted(block0 - cited)
