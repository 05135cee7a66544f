"""Property-based: mutated example specs always get located diagnostics, never a crash.

Oracles: pydantic itself (if the kind's model rejects the mutated document, validation must
report an error inside that document), ruamel's pure-Python loader (if it cannot read the
text, there must be an error), and the reference graph (a renamed reference is reported at
the referring node).
"""

from __future__ import annotations

import functools
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from compiler.diagnostics import Severity
from compiler.spec.kinds import KINDS
from compiler.validate.pipeline import validate
from tests.conftest import EXAMPLE_DIRS

HOSTILE = [
    "",
    " ",
    "\n",
    "line1\nline2",
    '"quoted"',
    "'single'",
    "{{ spec.name }}",
    "${HOME}",
    "$(rm -rf /)",
    "%s%n",
    "\\",
    "\x00",
    "\t",
    "a: b",
    "- x",
    "&anchor",
    "*alias",
    "!!python/object",
    "ü∑🙂",
    "x" * 5000,
    "-1",
    "1e309",
    "NaN",
    "null",
    "true",
    "0x1F",
    "../../etc/passwd",
    "ns=2;s=x",
    "#",
    "+",
]
VALUES = st.one_of(
    st.sampled_from(HOSTILE),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["a", "name", "spec"]), st.integers(), max_size=2),
)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
PROJECT_LEVEL = {"TAKT9001", "TAKT9002", "TAKT9004"}


def _spec_files(example: Path) -> list[Path]:
    return sorted((example / "specs").glob("*.yaml"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("props")
    for example in EXAMPLE_DIRS:
        shutil.copytree(example, root / example.name)
    return root


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _get(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


def _mutate(doc: Any, data: st.DataObject) -> Any:
    paths = _paths(doc)
    path = data.draw(st.sampled_from(paths))
    parent = _get(doc, path[:-1])
    leaf = path[-1]
    action = data.draw(st.sampled_from(["delete", "replace", "rename", "add"]))
    if action == "delete":
        del parent[leaf]
    elif action == "replace":
        parent[leaf] = data.draw(VALUES)
    elif action == "rename" and isinstance(parent, dict):
        parent[data.draw(st.sampled_from([leaf + "x", leaf[:-1] or "k", leaf.upper(), leaf.lower(), "_" + leaf]))] = (
            parent.pop(leaf)
        )
    elif isinstance(parent, dict):
        parent[data.draw(st.sampled_from(["extra", "fieldz", "Spec", "metdata"]))] = data.draw(VALUES)
    else:
        parent.insert(leaf, data.draw(VALUES))
    return doc


def _run(example: Path):
    result = validate(example)
    for d in result.diagnostics:
        if d.code not in PROJECT_LEVEL:
            assert d.location.line >= 1 and d.location.column >= 1, d
        assert d.message and d.code
    return result


@pytest.mark.parametrize("name", [p.name for p in EXAMPLE_DIRS])
@SETTINGS
@given(data=st.data())
def test_structural_mutations_are_caught_where_pydantic_rejects(workdir: Path, name: str, data: st.DataObject):
    example = workdir / name
    files = _spec_files(example)
    target = data.draw(st.sampled_from(files))
    original = target.read_text(encoding="utf-8")
    yaml = YAML(typ="safe", pure=True)
    docs = list(yaml.load_all(original))
    index = data.draw(st.integers(0, len(docs) - 1))
    docs[index] = _mutate(docs[index], data)
    buf = io.StringIO()
    yaml.dump_all(docs, buf)
    text = buf.getvalue()
    try:
        target.write_text(text, encoding="utf-8")
        result = _run(example)
        mutated = docs[index]
        kind = mutated.get("kind") if isinstance(mutated, dict) else None
        cls = KINDS.get(kind) if isinstance(kind, str) else None
        rejected = cls is None
        if cls is not None:
            try:
                cls.model_validate(mutated)
            except Exception:  # noqa: BLE001 - the oracle only needs "rejected or not"
                rejected = True
        if rejected:
            rel = target.relative_to(Path.cwd()) if target.is_relative_to(Path.cwd()) else target
            errors = [
                d
                for d in result.diagnostics
                if d.severity == Severity.ERROR and Path(d.location.file).resolve() == Path(rel).resolve()
            ]
            assert errors, f"pydantic rejects the mutation but takt reported nothing in {target.name}"
    finally:
        target.write_text(original, encoding="utf-8")


def _text_mutation(text: str, data: st.DataObject) -> str:
    lines = text.splitlines(keepends=True)
    i = data.draw(st.integers(0, max(len(lines) - 1, 0)))
    kind = data.draw(st.sampled_from(["indent", "dedent", "drop", "dup", "insert", "truncate", "tab"]))
    if kind == "indent":
        lines[i] = " " * data.draw(st.integers(1, 5)) + lines[i]
    elif kind == "dedent":
        lines[i] = lines[i].lstrip(" ")
    elif kind == "drop":
        del lines[i]
    elif kind == "dup":
        lines.insert(i, lines[i])
    elif kind == "tab":
        lines[i] = "\t" + lines[i]
    elif kind == "insert":
        at = data.draw(st.integers(0, len(lines[i])))
        lines[i] = lines[i][:at] + data.draw(st.sampled_from(HOSTILE)) + lines[i][at:]
    else:
        return text[: data.draw(st.integers(0, len(text)))]
    return "".join(lines)


def _readable(text: str, *, pure: bool) -> bool:
    try:
        list(YAML(typ="safe", pure=pure).load_all(text))
    except Exception:  # noqa: BLE001 - the oracle only needs "readable or not"
        return False
    return True


@pytest.mark.parametrize("name", [p.name for p in EXAMPLE_DIRS])
@SETTINGS
@given(data=st.data())
def test_text_mutations_never_crash_and_unreadable_yaml_is_an_error(workdir: Path, name: str, data: st.DataObject):
    example = workdir / name
    target = data.draw(st.sampled_from(_spec_files(example)))
    original = target.read_text(encoding="utf-8")
    text = _text_mutation(original, data)
    try:
        target.write_text(text, encoding="utf-8")
        result = _run(example)
        readable = _readable(text, pure=True)
        if not readable and "\t" in text:
            # ruamel's pure scanner refuses tabs that YAML 1.2 allows as separation (`key\t: v`, `a: b\tc`);
            # libyaml reads them, as the spec does: for tabs it is the better oracle
            readable = _readable(text, pure=False)
        if not readable:
            assert any(
                d.severity == Severity.ERROR and d.location.file.endswith(target.name) for d in result.diagnostics
            )
    finally:
        target.write_text(original, encoding="utf-8")


REFERENCES = [  # (kind, path inside the document, referred kind)
    ("Deployment", ("spec", "targets", 0), "Target"),
    ("Deployment", ("spec", "gates", 0), "TestSuite"),
    ("Deployment", ("spec", "bindings", 0, "source"), "DataSource"),
    ("Device", ("spec", "target"), "Target"),
    ("TestSuite", ("spec", "model"), "Model"),
]


@functools.cache
def _references(example: Path) -> tuple[list[tuple[Path, int, tuple[str | int, ...], str]], dict[str, frozenset[str]]]:
    """The example's references (file, document, path, referred kind) and its names by kind, read once per
    example: each case restores the file it renamed in, so the originals are the same for every case."""
    yaml = YAML(typ="safe", pure=True)
    candidates, names = [], {}
    for f in _spec_files(example):
        for i, doc in enumerate(yaml.load_all(f.read_text(encoding="utf-8"))):
            names.setdefault(doc.get("kind"), set()).add((doc.get("metadata") or {}).get("name"))
            for kind, path, referred in REFERENCES:
                if doc.get("kind") == kind:
                    candidates.append((f, i, path, referred))
    return candidates, {kind: frozenset(v) for kind, v in names.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in EXAMPLE_DIRS])
@SETTINGS
@given(data=st.data(), new=st.from_regex(r"[a-z][a-z0-9]{2,12}", fullmatch=True))
def test_renamed_references_are_reported_at_the_referring_node(workdir: Path, name: str, data: st.DataObject, new: str):
    example = workdir / name
    yaml = YAML(typ="safe", pure=True)
    candidates, names = _references(example)
    f, i, path, referred = data.draw(st.sampled_from(candidates))
    original = f.read_text(encoding="utf-8")
    docs = list(yaml.load_all(original))
    if new in names.get(referred, ()):
        return
    _get(docs[i], path[:-1])[path[-1]] = new
    buf = io.StringIO()
    yaml.dump_all(docs, buf)
    try:
        f.write_text(buf.getvalue(), encoding="utf-8")
        result = _run(example)
        dangling = [d for d in result.diagnostics if d.code == "TAKT3001" and new in d.message]
        assert dangling and dangling[0].message.startswith(f"{referred} {new!r}")
        assert dangling[0].location.file.endswith(f.name)
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        assert dangling[0].path == dotted  # reported at the referring node, not only somewhere in the file
        line = buf.getvalue().splitlines()[dangling[0].location.line - 1]
        assert new in line[dangling[0].location.column - 1 :]  # and its line and column point at the new name
    finally:
        f.write_text(original, encoding="utf-8")
