"""Every ```python block of the documentation runs, in order, one namespace per page."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
PAGES = sorted(p for p in DOCS.rglob("*.md") if BLOCK.search(p.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_samples_run(page: Path) -> None:
    name = "docs_" + "_".join(page.relative_to(DOCS).with_suffix("").parts)
    module = types.ModuleType(name)  # a real module: dataclasses look it up
    sys.modules[module.__name__] = module
    try:
        for number, match in enumerate(BLOCK.finditer(page.read_text()), 1):
            code = compile(match.group(1), f"{page.name}[sample {number}]", "exec")
            exec(code, module.__dict__)  # our own documentation
    finally:
        del sys.modules[module.__name__]
