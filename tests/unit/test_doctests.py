"""Every example in a docstring runs and prints what it says (the modules are found by their ``>>>``)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WITH_EXAMPLES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for pkg in ("stream_app", "models", "schemas") for p in (ROOT / pkg).rglob("*.py") if ">>> " in p.read_text())


def test_the_examples_are_found():
    assert "stream_app.core.clock" in WITH_EXAMPLES and "models.baselines" in WITH_EXAMPLES


@pytest.mark.parametrize("module", WITH_EXAMPLES)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
