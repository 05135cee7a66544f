"""Structure: the envelope (apiVersion, kind) and the kind's pydantic model, as located diagnostics."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from compiler.diagnostics import Diagnostic
from compiler.loader.yamldoc import Path_, YamlDocument
from compiler.spec.kinds import API_VERSION, KINDS, KNOWN_API_VERSIONS
from compiler.spec.types import SpecModel
from compiler.validate.document import SpecDocument, did_you_mean

S = TypeVar("S", bound=SpecModel)

_TYPE_CODES = {
    "missing": "TAKT1003",
    "extra_forbidden": "TAKT1004",
    "union_tag_invalid": "TAKT1008",
    "union_tag_not_found": "TAKT1008",
}
_VALUE_ERRORS = (
    "literal_error",
    "enum",
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "too_short",
    "too_long",
    "string_pattern_mismatch",
    "string_too_short",
    "string_too_long",
    "multiple_of",
    "finite_number",
)


def load_spec_document(yaml: YamlDocument, file_path: Path) -> tuple[SpecDocument | None, list[Diagnostic]]:
    """Check the envelope, then validate against the kind's model; every error is located."""
    data = yaml.data
    probe = SpecDocument(yaml, file_path, "?", None)
    if not isinstance(data, dict):
        got = type(data).__name__ if data is not None else "nothing"
        return None, [probe.diag("TAKT0008", f"a document must be a mapping, got {got}")]
    diags: list[Diagnostic] = []
    api = data.get("apiVersion")
    if api is not None and not isinstance(api, str):
        diags.append(probe.diag("TAKT1001", f"apiVersion must be a string, got {_describe(api)}", ("apiVersion",)))
    elif api is None:
        diags.append(probe.diag("TAKT1001", "missing apiVersion", hint=f"add `apiVersion: {API_VERSION}`"))
    elif api not in KNOWN_API_VERSIONS:
        diags.append(
            probe.diag(
                "TAKT1001",
                f"unknown apiVersion {api!r}",
                ("apiVersion",),
                hint=did_you_mean(str(api), KNOWN_API_VERSIONS),
            )
        )
    kind = data.get("kind")
    if kind is not None and not isinstance(kind, str):
        diags.append(probe.diag("TAKT1002", f"kind must be a string, got {_describe(kind)}", ("kind",)))
    elif kind is None:
        diags.append(probe.diag("TAKT1002", "missing kind", hint="expected one of: " + ", ".join(KINDS)))
    elif kind == "Project":
        diags.append(probe.diag("TAKT1002", "kind Project belongs in takt.yaml at the project root", ("kind",)))
    elif kind not in KINDS:
        diags.append(probe.diag("TAKT1002", f"unknown kind {kind!r}", ("kind",), hint=did_you_mean(str(kind), KINDS)))
    if diags or not isinstance(kind, str):  # no finding: kind is one of KINDS
        return None, diags
    meta = data.get("metadata")
    raw_name = meta.get("name") if isinstance(meta, dict) else None
    doc = SpecDocument(yaml, file_path, kind, raw_name if isinstance(raw_name, str) else None)
    doc.model, errors = validate_model(KINDS[kind], data, doc)
    return doc, errors


def validate_model(cls: type[S], data: Any, doc: SpecDocument) -> tuple[S | None, list[Diagnostic]]:
    try:
        return cls.model_validate(data), []
    except ValidationError as exc:
        return None, _fold_typos([pydantic_diagnostic(doc, cls, err) for err in exc.errors(include_url=False)])


def _fold_typos(diags: list[Diagnostic]) -> list[Diagnostic]:
    """A misspelt required key is one mistake: keep "unknown field 'x' — did you mean 'y'?" and drop
    the "missing required field 'y'" it causes at the same place."""
    suggested = {
        (d.path.rpartition(".")[0], d.hint.removeprefix("did you mean '").removesuffix("'?"))
        for d in diags
        if d.code == "TAKT1004" and d.hint.startswith("did you mean")
    }
    return [d for d in diags if not (d.code == "TAKT1003" and (d.path, d.message.split("'")[1]) in suggested)]


def _walk(data: Any, loc: tuple[Any, ...]) -> tuple[Path_, str | None]:
    """Map a pydantic error location to a data path.

    Elements that do not exist in the data are union tags or model names, except the last
    one, which is the missing (or refused) key itself.
    """
    path: list[str | int] = []
    cur = data
    for i, el in enumerate(loc):
        if isinstance(cur, dict) and isinstance(el, str) and el in cur:  # noqa: SIM114 - one branch per type narrows `cur`
            path.append(el)
            cur = cur[el]
        elif isinstance(cur, list) and isinstance(el, int) and 0 <= el < len(cur):
            path.append(el)
            cur = cur[el]
        elif i == len(loc) - 1 and isinstance(el, str):
            return tuple(path), el
    return tuple(path), None


def _choices(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '…' if len(text) > 60 else text}"


def pydantic_diagnostic(doc: SpecDocument, cls: type[SpecModel], err: ErrorDetails) -> Diagnostic:
    etype = err["type"]
    ctx = err.get("ctx") or {}
    path, leaf = _walk(doc.data, tuple(err["loc"]))
    value = err.get("input")
    if etype.startswith("TAKT"):
        return doc.diag(etype, err["msg"], path)
    if etype == "missing" and leaf is not None:
        return doc.diag(
            _TYPE_CODES[etype],  # each branch below is one of the table's types
            f"missing required field {leaf!r}",
            path,
            key=True,
            hint=f"add `{leaf}:` under `{path[-1] if path else 'the document'}`",
        )
    if etype == "extra_forbidden":
        full = (*path, leaf) if leaf is not None else path
        name = str(full[-1]) if full else "?"
        return doc.diag(
            _TYPE_CODES[etype],  # each branch below is one of the table's types
            f"unknown field {name!r}",
            full,
            key=True,
            hint=did_you_mean(name, allowed_fields(cls, doc.data, full[:-1])),
        )
    if etype == "union_tag_invalid":
        disc = str(ctx.get("discriminator", "")).strip("'")
        tag = str(ctx.get("tag", ""))
        return doc.diag(
            _TYPE_CODES[etype],  # each branch below is one of the table's types
            f"unknown {disc} {tag!r}",
            (*path, disc),
            hint=did_you_mean(tag, _choices(str(ctx.get("expected_tags", "")))),
        )
    if etype == "union_tag_not_found":
        disc = str(ctx.get("discriminator", "")).strip("'")
        return doc.diag(
            _TYPE_CODES[etype],  # each branch below is one of the table's types
            f"missing {disc!r}",
            path,
            key=True,
            hint="expected one of: " + ", ".join(repr(c) for c in _choices(str(ctx.get("expected_tags", "")))),
        )
    full = (*path, leaf) if leaf is not None and leaf != "" else path
    message = err["msg"].replace("Input should be", "expected").replace("input should be", "expected")
    hint = ""
    if etype == "literal_error":
        hint = did_you_mean(str(value), _choices(str(ctx.get("expected", ""))))
        return doc.diag("TAKT1007", f"{message}, got {_describe(value)}", full, hint=hint)
    if etype in _VALUE_ERRORS:
        return doc.diag("TAKT1007", f"{message}, got {_describe(value)}", full)
    if etype.endswith(("_type", "_parsing")) or etype in ("model_attributes_type", "is_instance_of"):
        if etype == "string_type" and isinstance(value, int | float | bool):
            hint = "YAML read this as a number or boolean; quote it to keep it text"
        return doc.diag("TAKT1005", f"{message}, got {_describe(value)}", full, hint=hint)
    text = err["msg"].removeprefix("Value error, ")
    return doc.diag("TAKT1012", text, full)


@functools.cache
def _schema(cls: type[SpecModel]) -> dict[str, Any]:
    return cls.model_json_schema(by_alias=True)


def _resolve(node: dict[str, Any], data: Any, defs: dict[str, Any]) -> dict[str, Any]:
    for _ in range(32):
        if "$ref" in node:
            node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
            continue
        variants = node.get("oneOf") or node.get("anyOf")
        if not variants:
            return node
        disc = node.get("discriminator")
        if disc and isinstance(data, dict) and data.get(disc["propertyName"]) in disc.get("mapping", {}):
            node = {"$ref": disc["mapping"][data[disc["propertyName"]]]}
            continue
        objects = [v for v in variants if v.get("type") != "null"]
        node = objects[0] if objects else {}
        if isinstance(data, dict):
            scored = [
                (len(set(_resolve(v, None, defs).get("properties", {})) & set(data)), i, v)
                for i, v in enumerate(objects)
            ]
            if scored:
                node = max(scored, key=lambda t: (t[0], -t[1]))[2]
    return node


def allowed_fields(cls: type[SpecModel], data: Any, path: Path_) -> list[str]:
    """The keys the schema allows at `path`, following the data through unions."""
    root = _schema(cls)
    defs = root.get("$defs", {})
    node, cur = root, data
    for el in path:
        node = _resolve(node, cur, defs)
        if isinstance(el, int):
            node = node.get("items", {})
            cur = cur[el] if isinstance(cur, list) and el < len(cur) else None
        else:
            node = node.get("properties", {}).get(el) or node.get("additionalProperties") or {}
            cur = cur.get(el) if isinstance(cur, dict) else None
    node = _resolve(node, cur, defs)
    return list(node.get("properties", {}))
