"""Each layer of the bundle symlink defence on its own: the problem named for the linked file says link.

test_bundle's symlink cases are refused by several checks at once (the path resolved inside, O_NOFOLLOW, the
walk for stray links), so removing one of them left every test green. Here each case expects the exact
problem its own layer reports, and never a content or mode comparison made through the link.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.bundle import verify_bundle
from tests.test_bundle import _bundle, _link_cases

CASES = {f.__name__: f for f in _link_cases()}
NOT_REGULAR = "not a regular file (symlink, device or directory)"
EXPECTED = {
    "absolute_outside": NOT_REGULAR,
    "relative_outside": NOT_REGULAR,
    "inside_twin": "reached through a symbolic link",  # resolves inside the bundle, to another path
    "directory_link": NOT_REGULAR,  # a parent that is a link leaves the tree
}


@pytest.mark.parametrize("rel", ["runner.json", "bin/start"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_threat_the_linked_file_is_refused_by_its_own_check(tmp_path: Path, rel: str, case: str):
    m, d = _bundle(tmp_path / "b")
    outside = tmp_path / "outside"
    outside.mkdir()
    CASES[case](d, outside, rel)
    _, problems = verify_bundle(d, m.digest)
    assert problems[0] == f"{rel}: {EXPECTED[case]}"
    assert not [p for p in problems if "mode" in p or "content" in p or "manifest says" in p], problems
