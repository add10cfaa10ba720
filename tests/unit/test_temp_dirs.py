"""The suite makes temp dirs one way (helpers.temp_dir, or pytest's tmp_path), so that the
end-of-session check in conftest sees every one of them."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
OTHER_WAYS = re.compile(r"tempfile\.(mkdtemp|TemporaryDirectory|mkstemp|NamedTemporaryFile)\(")


def test_temp_dirs_are_made_by_the_helper_only():
    offenders = [str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py")
                 if p.name != "helpers.py" and p != Path(__file__).resolve() and OTHER_WAYS.search(p.read_text())]
    assert offenders == []


def test_the_helper_names_its_dirs_for_the_check(tmp_path):
    from tests.helpers import temp_dir, temp_prefix

    d = temp_dir("check")
    try:
        assert d.is_dir() and d.name.startswith(f"{temp_prefix()}check-")
    finally:
        d.rmdir()
