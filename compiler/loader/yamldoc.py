"""YAML text → plain Python data plus the span of every key and value.

Validation needs positions, not comments, so documents are composed with ruamel's C
composer (when ruamel.yaml.clib is present) and converted here; round-trip loading is kept
for commands that rewrite files. The conversion is where hostile YAML is refused: duplicate
keys, non-standard tags, complex keys, recursive aliases and alias bombs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from compiler.codes import located
from compiler.diagnostics import Diagnostic, Location
from compiler.loader.source import SourceText

Path_ = tuple[str | int, ...]

# Expanded nodes that aliases may add to one file; a billion-laughs file hits it at once.
MAX_ALIAS_EXPANSION = 50_000

STOPS_FILE = frozenset({"TAKT0001", "TAKT0003", "TAKT0012"})  # codes after which a file's documents are unread
_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}
_MERGE_TAG = f"{_TAG}merge"


@dataclass(frozen=True)
class Span:
    """1-based start, exclusive end."""

    line: int
    column: int
    end_line: int
    end_column: int

    def location(self, file: str) -> Location:
        return Location(file, self.line, self.column, self.end_line, self.end_column)


@dataclass
class YamlDocument:
    file: str
    index: int  # position of the document in its file, 0-based
    data: Any
    span: Span
    values: dict[Path_, Span] = field(default_factory=dict)
    keys: dict[Path_, Span] = field(default_factory=dict)

    def locate(self, path: Path_, *, key: bool = False) -> Location:
        """The span of the node at `path`, or of its nearest existing ancestor."""
        p = tuple(path)
        if key and p in self.keys:
            return self.keys[p].location(self.file)
        while p:
            if p in self.values:
                return self.values[p].location(self.file)
            p = p[:-1]
        return self.span.location(self.file)


class _Refused(Exception):
    def __init__(self, code: str, message: str, node: Node, hint: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.node, self.hint = code, message, node, hint


def _tag(node: Node) -> str | None:
    """The node's resolved tag. ruamel's `Node.tag` percent-decodes the tag's suffix character by
    character on every node (a third of composing a spec file); a suffix without `%` is its own
    decoding, so it is read as it is, and anything else through `Node.tag`."""
    ctag = node.ctag
    if ctag is not None and ctag.handle is None and isinstance(ctag.suffix, str) and "%" not in ctag.suffix:
        return ctag.suffix
    return node.tag


def _span(node: Node) -> Span:
    s, e = node.start_mark, node.end_mark
    return Span(s.line + 1, s.column + 1, e.line + 1, e.column + 1)


class _Converter:
    def __init__(self, doc: YamlDocument, constructor: Any) -> None:
        self.doc = doc
        self.ctor = constructor
        self.seen: set[int] = set()
        self.active: set[int] = set()
        self.expanded = 0
        self.problems: list[_Refused] = []  # findings that do not stop the document

    def convert(self, node: Node, path: Path_, in_alias: bool = False) -> Any:
        nid = id(node)
        if nid in self.active:
            raise _Refused("TAKT0006", "recursive alias: a node contains itself", node)
        if nid in self.seen:
            in_alias = True
        self.seen.add(nid)
        if in_alias:
            self.expanded += 1
            if self.expanded > MAX_ALIAS_EXPANSION:
                raise _Refused(
                    "TAKT0006",
                    f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} nodes (alias bomb)",
                    node,
                )
        self.doc.values[path] = _span(node)
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        self.active.add(nid)
        try:
            if isinstance(node, SequenceNode):
                self._check_tag(node, f"{_TAG}seq")
                return [self.convert(child, (*path, i), in_alias) for i, child in enumerate(node.value)]
            if isinstance(node, MappingNode):
                self._check_tag(node, f"{_TAG}map")
                return self._mapping(node, path, in_alias)
        finally:
            self.active.discard(nid)
        raise _Refused("TAKT0007", f"unsupported YAML node {type(node).__name__}", node)

    def _check_tag(self, node: Node, expected: str) -> None:
        tag = _tag(node)
        if tag != expected:
            raise _Refused("TAKT0007", f"tag {_short(tag)!r} is not allowed", node)

    def _scalar(self, node: ScalarNode) -> Any:
        tag = _tag(node)
        if tag not in _SCALAR_TAGS:
            raise _Refused("TAKT0007", f"tag {_short(tag)!r} is not allowed", node)
        if tag.endswith(("str", "timestamp")):
            return node.value  # dates stay text; the models parse what they need
        if tag.endswith("null"):
            return None
        try:
            if tag.endswith("int"):
                return self.ctor.construct_yaml_int(node)
            if tag.endswith("float"):
                return self.ctor.construct_yaml_float(node)
            return self.ctor.construct_yaml_bool(node)
        except (YAMLError, ValueError) as exc:
            raise _Refused("TAKT0001", f"invalid {_short(tag)} value {node.value!r}: {exc}", node) from exc

    def _key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise _Refused("TAKT0013", "mapping keys must be plain scalars, not lists or mappings", node)
        tag = _tag(node)
        if tag not in _SCALAR_TAGS:
            raise _Refused("TAKT0007", f"tag {_short(tag)!r} is not allowed on a key", node)
        return str(node.value)

    def _mapping(self, node: MappingNode, path: Path_, in_alias: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        explicit: set[str] = set()
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and _tag(key_node) == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for src in sources:
                    if not isinstance(src, MappingNode):
                        raise _Refused("TAKT0010", "`<<` merge needs a mapping or a list of mappings", src)
                    merged.extend(src.value)
                continue
            key = self._key(key_node)
            if key in explicit:
                first = self.doc.keys[(*path, key)]
                self.problems.append(
                    _Refused(
                        "TAKT0002",
                        f"duplicate key {key!r} (first defined at line {first.line})",
                        key_node,
                        "Remove one of the two; YAML would silently keep the later value.",
                    )
                )
                continue
            explicit.add(key)
            self.doc.keys[(*path, key)] = _span(key_node)
            out[key] = self.convert(value_node, (*path, key), in_alias)
        for key_node, value_node in merged:  # explicit keys win over merged ones
            key = self._key(key_node)
            if key not in out:
                self.doc.keys[(*path, key)] = _span(key_node)
                out[key] = self.convert(value_node, (*path, key), True)
        return out


def _short(tag: str | None) -> str:
    if not tag:
        return "?"
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _syntax_diag(source: SourceText, exc: Exception) -> Diagnostic:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else 0
    col = mark.column + 1 if mark is not None else 0
    position = getattr(exc, "position", None)
    if mark is None and position is not None:  # ReaderError: char offset
        before = source.text[:position]
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
    tab = _tab_in_indentation(source.text, line)
    if tab:
        line, col = tab
        return located(
            "TAKT0003",
            "tab character in indentation",
            Location(source.display, line, col, line, col + 1),
            "YAML forbids tabs in indentation; indent with spaces.",
        )
    if isinstance(exc, MarkedYAMLError):
        parts = [p for p in (exc.problem, exc.context) if p]
        message = "; ".join(parts) or str(exc).splitlines()[0]
    elif isinstance(exc, YAMLError):
        message = str(exc).splitlines()[0]
    else:
        message = f"cannot parse YAML ({type(exc).__name__}: {exc})"
    message = message.replace("\t", "\\t")
    dedented = _dedented_key(source.text, line)
    if dedented is not None:  # the parser notices one line late: point at the key that moved
        line, col, key = dedented
        message = f"key {key!r} starts at column 1 inside an indented block; indent it like its siblings"
    return located(
        "TAKT0001",
        f"YAML syntax error: {message}",
        Location(source.display, line, col, line, col + 1 if line else 0),
        "Check indentation, quotes and brackets around this position.",
    )


_KEY_AT_COLUMN_1 = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*:(\s|$)")


def _dedented_key(text: str, error_line: int) -> tuple[int, int, str] | None:
    """(line, 1, key) when the line before a syntax error is a key dedented to column 1.

    The classic slip: one key of an indented block lost its indentation. libyaml reports the
    next line, where the block continues indented; the mistake is the key before it.
    """
    lines = text.splitlines()
    if not 1 < error_line <= len(lines) or not lines[error_line - 1].startswith(" "):
        return None
    content = [n for n in range(error_line - 1) if lines[n].strip() and not lines[n].lstrip().startswith("#")]
    if len(content) < 2:
        return None
    key_line, before = content[-1], content[-2]
    m = _KEY_AT_COLUMN_1.match(lines[key_line])
    if m is None or (not lines[before].startswith(" ") and not lines[before].rstrip().endswith(":")):
        return None
    return key_line + 1, 1, m.group(1)


def _tab_in_indentation(text: str, upto_line: int) -> tuple[int, int] | None:
    """The first tab used as indentation at or before the failing line (1-based)."""
    if "\t" not in text:
        return None
    for number, line in enumerate(text.splitlines()[: max(upto_line, 1)], start=1):
        stripped = line.lstrip(" \t")
        indent = line[: len(line) - len(stripped)]
        if "\t" in indent and stripped and not stripped.startswith("#"):
            return number, indent.index("\t") + 1
    return None


MAX_NESTING = 512  # far beyond any spec; far below what crashes a parser
_FLOW_CHARS = re.compile(r"[\[\]{}#]")


def _too_deep(text: str) -> tuple[int, int] | None:
    """Where a cheap, conservative estimate of nesting passes MAX_NESTING, before any parser runs.

    The estimate adds indentation, a line's leading `- `/`? ` chain and open flow brackets; it
    can only over-count (brackets inside quoted strings), never under-count.
    """
    if "[" not in text and "{" not in text and len(text) < MAX_NESTING:
        return None
    flow = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" ")
        depth = len(line) - len(stripped)
        while stripped[:2] in ("- ", "? ") or stripped in ("-", "?"):
            depth += 1
            stripped = stripped[2:].lstrip(" ")
        if depth + flow > MAX_NESTING:
            return number, 1
        for m in _FLOW_CHARS.finditer(line):
            ch, col = m.group(), m.start() + 1
            if ch == "#" and (col == 1 or line[col - 2] in " \t"):
                break
            if ch in "[{":
                flow += 1
                if depth + flow > MAX_NESTING:
                    return number, col
            elif ch in "]}":
                flow = max(0, flow - 1)
    return None


def load_documents(source: SourceText) -> tuple[list[YamlDocument], list[Diagnostic]]:
    """Every document of a file, or the diagnostic that stopped reading it.

    The C composer (libyaml rules) is tried first for speed. Where it fails, the file is read
    again with ruamel's pure YAML 1.2 composer, which is the reference: libyaml refuses some
    valid YAML 1.2, such as `{url: http://plc:4840}` in a flow mapping.
    Documents before a syntax error are kept, so their own findings still show.
    """
    too_deep = _too_deep(source.text)
    if too_deep is not None:  # libyaml recurses on the C stack: past ~30,000 levels it crashes the process
        line, col = too_deep
        loc = Location(source.display, line, col, line, col + 1)
        return [], [located("TAKT0012", f"nesting deeper than {MAX_NESTING} levels", loc)]
    docs, diags, syntax_error = _compose(source, pure=False)
    if syntax_error:
        docs, diags, _ = _compose(source, pure=True)
    return docs, diags


def _compose(source: SourceText, *, pure: bool) -> tuple[list[YamlDocument], list[Diagnostic], bool]:
    yaml = YAML(typ="safe", pure=pure)
    docs: list[YamlDocument] = []
    diags: list[Diagnostic] = []
    try:
        for index, root in enumerate(yaml.compose_all(source.text)):
            if root is None or (isinstance(root, ScalarNode) and _tag(root) == f"{_TAG}null"):
                continue  # an empty document, e.g. a trailing `---`
            doc = YamlDocument(source.display, index, None, _span(root))
            converter = _Converter(doc, yaml.constructor)
            try:
                doc.data = converter.convert(root, ())
            except _Refused as refused:  # this document is unusable; the file's others are not
                diags.append(_refused_diag(source, refused))
                continue
            diags.extend(_refused_diag(source, p) for p in converter.problems)
            docs.append(doc)
    except RecursionError:
        loc = Location(source.display, 1, 1, 1, 2)
        return docs, [*diags, located("TAKT0012", "nesting too deep to read", loc)], False
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's input, never a crash
        return docs, [*diags, _syntax_diag(source, exc)], True
    return docs, diags, False


def _refused_diag(source: SourceText, refused: _Refused) -> Diagnostic:
    loc = _span(refused.node).location(source.display)
    return located(refused.code, refused.message, loc, refused.hint)
