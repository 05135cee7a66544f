"""Nothing in the docs refers to a command, flag, make target, field, reason or code that does not exist.

Every fenced block of README.md, docs/ and the examples' READMEs is read: each `takt …` line (also the
`run:` steps of a CI snippet) must name an existing subcommand whose `--help` lists every flag used;
each `make X` an existing target; each YAML spec snippet must pass the structure stage of
`takt validate` as the document it is (a bare `spec:` fragment: as one of the kinds).
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from compiler.cli.main import cli
from compiler.codes import RULES
from compiler.diagnostics import Severity
from compiler.loader.source import read_source
from compiler.loader.yamldoc import load_documents
from compiler.spec.kinds import KINDS
from compiler.validate.structure import load_spec_document
from tests.conftest import EXAMPLES, ROOT

DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted(EXAMPLES.glob("*/README.md")),
    *sorted(EXAMPLES.glob("*/updates/*/README.md")),
]
_FENCE = re.compile(r"^( *)```([A-Za-z]*)\s*$")
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")
_SEGMENT = re.compile(r"\s(?:&&|\|\||\||;)\s")
_TAKT = ("takt", ".venv/bin/takt", "/opt/takt/bin/takt", "$TAKT", '"$TAKT"')


@dataclass(frozen=True)
class Block:
    file: Path
    line: int
    lang: str
    text: str

    def where(self, offset: int = 0) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line + offset}"


def blocks(path: Path) -> list[Block]:
    out, lines, i = [], path.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        out.append(Block(path, start + 1, m.group(2), textwrap.dedent("\n".join(body))))
        i += 1
    return out


ALL_BLOCKS = [b for doc in DOCS for b in blocks(doc)]


def commands(text: str) -> list[tuple[int, str]]:
    """(line offset, command) of each shell line, with continuations joined and comments cut."""
    out, pending, first = [], "", 0
    for n, raw in enumerate(text.splitlines()):
        if not pending and raw[:1] == " " and raw.lstrip().startswith("[") and out:
            out[-1] = (out[-1][0], f"{out[-1][1]} {raw.strip()}")  # a synopsis continued on the next line
            continue
        if not pending:
            first = n
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        for segment in _SEGMENT.split(full):
            segment = re.sub(r"(^|\s)#.*$", "", segment).strip()
            if segment:
                out.append((first, segment))
    return out


def _yaml_runs(text: str) -> list[str]:
    """The `run:` commands of a CI snippet (a list of steps)."""
    try:
        data = YAML(typ="safe").load(text)
    except Exception:  # noqa: BLE001 - not every YAML snippet is a CI snippet; spec snippets are checked below
        return []
    steps = data if isinstance(data, list) else []
    return [
        line for s in steps if isinstance(s, dict) and isinstance(s.get("run"), str) for line in s["run"].splitlines()
    ]


def _takt_lines() -> list[tuple[str, list[str]]]:
    found = []
    for b in ALL_BLOCKS:
        if b.lang in ("sh", "bash", "console", "shell", ""):
            lines = commands(b.text)
        elif b.lang == "yaml":
            lines = [(0, c) for c in _yaml_runs(b.text)]
        else:
            continue
        for offset, cmd in lines:
            words = cmd.split()
            if words and words[0] in _TAKT:
                found.append((b.where(offset + 1), words))
    return found


_INLINE = re.compile(r"`((?:takt|make) [^`]+)`")


def _inline_lines() -> list[tuple[str, list[str]]]:
    """`takt …` in running text (`takt pin --check`, `takt init DIR`)."""
    found = []
    for doc in DOCS:
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
            for cmd in _INLINE.findall(line):
                if cmd.startswith("takt "):
                    found.append((f"{doc.relative_to(ROOT)}:{n}", cmd.split()))
    return found


def _demo_lines() -> list[tuple[str, list[str]]]:
    """What `make demo` runs (examples/demo.sh calls "$TAKT")."""
    demo = EXAMPLES / "demo.sh"
    return [
        (f"examples/demo.sh:{offset + 1}", ["takt", *words[1:]])
        for offset, cmd in commands(demo.read_text(encoding="utf-8"))
        if (words := cmd.split()) and words[0] in ('"$TAKT"', "$TAKT")
    ]


TAKT_LINES = _takt_lines() + _inline_lines() + _demo_lines()


def _resolve(words: list[str]) -> tuple[list[str], click.Command]:
    """Walk the words through click's public lookup, so lazily loaded groups (``takt agent``) resolve too."""
    path: list[str] = []
    cmd: click.Command = cli
    ctx = click.Context(cli)
    for w in words[1:]:
        sub = cmd.get_command(ctx, w) if isinstance(cmd, click.Group) else None
        if sub is None:
            break
        path.append(w)
        cmd = sub
    return path, cmd


_HELP: dict[tuple[str, ...], str] = {}


def _help(path: list[str]) -> str:
    if tuple(path) not in _HELP:
        result = CliRunner().invoke(cli, [*path, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, (path, result.output)
        _HELP[tuple(path)] = result.output
    return _HELP[tuple(path)]


def test_the_docs_show_takt_commands():
    assert len(TAKT_LINES) > 40  # the extraction finds the commands (README, operations guide, examples)
    named = {tuple(_resolve(words)[0]) for _, words in TAKT_LINES}
    assert {("validate",), ("build",), ("agent", "run"), ("schema",)} <= named


@pytest.mark.parametrize(("where", "words"), TAKT_LINES, ids=[w for w, _ in TAKT_LINES])
def test_every_takt_command_and_flag_in_the_docs_exists(where: str, words: list[str]):
    path, cmd = _resolve(words)
    flags = {f for w in words[1 + len(path) :] for f in _FLAG.findall(w)}
    if isinstance(cmd, click.Group):
        assert flags & {"--help", "--version"} or not words[1 + len(path) :], (
            f"{where}: `{' '.join(words)}`: {words[1 + len(path)]!r} is not a subcommand of takt {' '.join(path)}"
        )
    text = _help(path)
    for flag in flags:
        assert re.search(rf"(^|[\s,\[]){re.escape(flag)}\b", text, re.M), (
            f"{where}: `takt {' '.join(path)}` has no option {flag}"
        )


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {m for line in text.splitlines() for m in re.findall(r"^([A-Za-z0-9_.-]+):", line)}


def test_every_make_target_in_the_docs_exists():
    targets, used = _make_targets(), []
    for b in ALL_BLOCKS:
        if b.lang == "sh":
            for offset, cmd in commands(b.text):
                words = shlex.split(cmd)
                if words and words[0] == "make":
                    used.append((b.where(offset + 1), [w for w in words[1:] if "=" not in w and not w.startswith("-")]))
    assert used
    for where, names in used:
        for name in names:
            assert name in targets, f"{where}: make has no target {name!r}"


# --- YAML spec snippets ----------------------------------------------------------------------------------

SPEC_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "yaml" and re.search(r"^\s*(apiVersion|spec):", b.text, re.M)]


def _errors(path: Path) -> list[str]:
    source = read_source(path, path.name)
    assert not isinstance(source, type(None))
    ydocs, diags = load_documents(source)  # type: ignore[arg-type]
    diags = list(diags)
    kinds = []
    for ydoc in ydocs:
        doc, more = load_spec_document(ydoc, path)
        diags += more
        kinds.append(doc.kind if doc else None)
    return [f"{d.location.line}: {d.code} {d.message}" for d in diags if d.severity is Severity.ERROR]


def _fragment_kinds(fragment: str) -> list[str]:
    """The kinds whose `spec` a bare `spec:` fragment is (a DataSource fragment names its protocol)."""
    return ["DataSource"] if re.search(r"^\s+protocol:", fragment, re.M) else list(KINDS)


@pytest.mark.parametrize("block", SPEC_BLOCKS, ids=[b.where() for b in SPEC_BLOCKS])
def test_every_spec_snippet_in_the_docs_is_a_valid_document(block: Block, tmp_path: Path):
    path = tmp_path / "snippet.yaml"
    if re.search(r"^apiVersion:", block.text, re.M):
        path.write_text(block.text, encoding="utf-8")
        errors = _errors(path)
        assert not errors, f"{block.where()}: {errors}"
        return
    tried = {}
    for kind in _fragment_kinds(block.text):
        path.write_text(f"apiVersion: takt/v1\nkind: {kind}\nmetadata: {{name: x}}\n{block.text}\n", encoding="utf-8")
        tried[kind] = _errors(path)
        if not tried[kind]:
            return
    pytest.fail(f"{block.where()}: the fragment is no kind's spec: {tried}")


def test_every_code_named_in_the_docs_exists():
    for doc in DOCS:
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
            for code in re.findall(r"\bTAKT\d{4}\b", line):
                assert code in RULES, f"{doc.relative_to(ROOT)}:{n}: {code} is not a rule (takt rules)"


def _table_keys(text: str, header: str) -> list[str]:
    """The first column of the table whose header row starts with `| header |`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    keys = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        keys.append(line.split("|")[1].strip().strip("`"))
    return keys


@pytest.mark.parametrize(("header", "enum"), [("reason", "Reason"), ("result", "Result"), ("event", "Event")])
def test_operations_guide_explains_every_reason_result_and_event(header: str, enum: str):
    """The tables of docs/agent-operations.md and the Enums of agent/reasons.py name the same words."""
    from agent import reasons

    text = (ROOT / "docs/agent-operations.md").read_text(encoding="utf-8")
    documented = _table_keys(text, header)
    assert sorted(documented) == sorted(m.value for m in getattr(reasons, enum))
    assert len(documented) == len(set(documented))
