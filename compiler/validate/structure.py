"""Structure: the envelope (apiVersion, kind) and the kind's pydantic model, as located diagnostics."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from compiler.diagnostics import Diagnostic
from compiler.loader.yamldoc import Path_, YamlDocument
from compiler.spec.kinds import API_VERSION, KINDS, KNOWN_API_VERSIONS
from compiler.spec.types import NOT_ALLOWED_ERROR, YAML_TYPE_ERROR, SpecModel
from compiler.validate.checks import Check, run_checks
from compiler.validate.document import SpecDocument, did_you_mean

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

S = TypeVar("S", bound=SpecModel)


def document_is_mapping(probe: SpecDocument) -> Iterator[Diagnostic]:
    """TAKT0008: a document is a mapping (apiVersion, kind, metadata, spec)."""
    data = probe.data
    if not isinstance(data, dict):
        got = type(data).__name__ if data is not None else "nothing"
        yield probe.diag("TAKT0008", f"a document must be a mapping, got {got}")


def api_version_known(probe: SpecDocument) -> Iterator[Diagnostic]:
    """TAKT1001: the document names a known apiVersion."""
    api = probe.data.get("apiVersion")
    if api is not None and not isinstance(api, str):
        yield probe.diag("TAKT1001", f"apiVersion must be a string, got {_describe(api)}", ("apiVersion",))
    elif api is None:
        yield probe.diag("TAKT1001", "missing apiVersion", hint=f"add `apiVersion: {API_VERSION}`")
    elif api not in KNOWN_API_VERSIONS:
        yield probe.diag(
            "TAKT1001", f"unknown apiVersion {api!r}", ("apiVersion",), hint=did_you_mean(str(api), KNOWN_API_VERSIONS)
        )


def kind_known(probe: SpecDocument) -> Iterator[Diagnostic]:
    """TAKT1002: the document is one of the spec kinds (Project belongs in takt.yaml)."""
    kind = probe.data.get("kind")
    if kind is not None and not isinstance(kind, str):
        yield probe.diag("TAKT1002", f"kind must be a string, got {_describe(kind)}", ("kind",))
    elif kind is None:
        yield probe.diag("TAKT1002", "missing kind", hint="expected one of: " + ", ".join(KINDS))
    elif kind == "Project":
        yield probe.diag("TAKT1002", "kind Project belongs in takt.yaml at the project root", ("kind",))
    elif kind not in KINDS:
        yield probe.diag("TAKT1002", f"unknown kind {kind!r}", ("kind",), hint=did_you_mean(str(kind), KINDS))


ENVELOPE = Check("TAKT0008", document_is_mapping)
CHECKS: tuple[Check[SpecDocument, Diagnostic], ...] = (
    Check("TAKT1001", api_version_known),
    Check("TAKT1002", kind_known),
)
"""The envelope's checks, on a document that is a mapping (ENVELOPE)."""


def load_spec_document(yaml: YamlDocument, file_path: Path) -> tuple[SpecDocument | None, list[Diagnostic]]:
    """Check the envelope, then validate against the kind's model; every error is located."""
    probe = SpecDocument(yaml, file_path, "?", None)
    diags = run_checks((ENVELOPE,), probe) or run_checks(CHECKS, probe)
    if diags:
        return None, diags
    data = yaml.data
    kind = data["kind"]
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


@dataclass(frozen=True)
class ModelError:
    """One pydantic error of one document, located: the subject of the model checks below."""

    doc: SpecDocument
    cls: type[SpecModel]
    err: ErrorDetails
    path: Path_
    leaf: str | None

    @property
    def type(self) -> str:
        return self.err["type"]

    @property
    def ctx(self) -> dict[str, Any]:
        return dict(self.err.get("ctx") or {})

    @property
    def full(self) -> Path_:
        return (*self.path, self.leaf) if self.leaf is not None and self.leaf != "" else self.path

    @property
    def message(self) -> str:
        return self.err["msg"].replace("Input should be", "expected").replace("input should be", "expected")


def _is_type_error(etype: str) -> bool:
    return etype.endswith(("_type", "_parsing")) or etype in ("model_attributes_type", "is_instance_of")


def missing_field(e: ModelError) -> Iterator[Diagnostic]:
    """TAKT1003: a required key is absent."""
    if e.type == "missing" and e.leaf is not None:
        yield e.doc.diag(
            "TAKT1003",
            f"missing required field {e.leaf!r}",
            e.path,
            key=True,
            hint=f"add `{e.leaf}:` under `{e.path[-1] if e.path else 'the document'}`",
        )


def unknown_field(e: ModelError) -> Iterator[Diagnostic]:
    """TAKT1004: a key the kind does not have (typos never pass silently)."""
    if e.type == "extra_forbidden":
        full = (*e.path, e.leaf) if e.leaf is not None else e.path
        name = str(full[-1]) if full else "?"
        yield e.doc.diag(
            "TAKT1004",
            f"unknown field {name!r}",
            full,
            key=True,
            hint=did_you_mean(name, allowed_fields(e.cls, e.doc.data, full[:-1])),
        )


def unknown_variant(e: ModelError) -> Iterator[Diagnostic]:
    """TAKT1008: the discriminator (type:, protocol:, …) names no variant, or is missing."""
    disc = str(e.ctx.get("discriminator", "")).strip("'")
    choices = _choices(str(e.ctx.get("expected_tags", "")))
    if e.type == "union_tag_invalid":
        tag = str(e.ctx.get("tag", ""))
        yield e.doc.diag("TAKT1008", f"unknown {disc} {tag!r}", (*e.path, disc), hint=did_you_mean(tag, choices))
    elif e.type == "union_tag_not_found":
        yield e.doc.diag(
            "TAKT1008",
            f"missing {disc!r}",
            e.path,
            key=True,
            hint="expected one of: " + ", ".join(repr(c) for c in choices),
        )


def value_not_allowed(e: ModelError) -> Iterator[Diagnostic]:
    """TAKT1007: a value of the right type outside what the field allows (choices, bounds, patterns)."""
    if e.type == NOT_ALLOWED_ERROR:
        yield e.doc.diag("TAKT1007", e.message, e.full)  # a spec validator's words, which name the value
    elif e.type in _VALUE_ERRORS:
        value = e.err.get("input")
        hint = did_you_mean(str(value), _choices(str(e.ctx.get("expected", "")))) if e.type == "literal_error" else ""
        yield e.doc.diag("TAKT1007", f"{e.message}, got {_describe(value)}", e.full, hint=hint)


def wrong_type(e: ModelError) -> Iterator[Diagnostic]:
    """TAKT1005: a value of another type (a list for a mapping, a number for text)."""
    if _is_type_error(e.type) and e.type not in _VALUE_ERRORS:
        value = e.err.get("input")
        hint = ""
        if e.type == "string_type" and isinstance(value, int | float | bool):
            hint = "YAML read this as a number or boolean; quote it to keep it text"
        message = e.message if e.type == YAML_TYPE_ERROR else f"{e.message}, got {_describe(value)}"
        yield e.doc.diag("TAKT1005", message, e.full, hint=hint)


def invalid_value(e: ModelError) -> Iterator[Diagnostic]:
    """TAKT1012: a value a model's own validator refused without a code of its own."""
    handled = e.type in _VALUE_ERRORS or e.type == NOT_ALLOWED_ERROR or _is_type_error(e.type) or e.type in _TYPE_CODES
    if not handled and not e.type.startswith("TAKT"):
        yield _invalid_value(e)


def _invalid_value(e: ModelError) -> Diagnostic:
    """Also what an error no other check takes becomes (at the node, its leaf unknown)."""
    return e.doc.diag("TAKT1012", e.err["msg"].removeprefix("Value error, "), e.full)


MODEL_CHECKS: tuple[Check[ModelError, Diagnostic], ...] = (
    Check("TAKT1003", missing_field),
    Check("TAKT1004", unknown_field),
    Check("TAKT1008", unknown_variant),
    Check("TAKT1007", value_not_allowed),
    Check("TAKT1005", wrong_type),
    Check("TAKT1012", invalid_value),
)
"""Each pydantic error type belongs to one of them; an error a spec model's validator raised with a
code (TAKT1009, TAKT2001, …) keeps that code: the validator is its check."""


def pydantic_diagnostic(doc: SpecDocument, cls: type[SpecModel], err: ErrorDetails) -> Diagnostic:
    path, leaf = _walk(doc.data, tuple(err["loc"]))
    if err["type"].startswith("TAKT"):
        return doc.diag(err["type"], err["msg"], path)
    found = run_checks(MODEL_CHECKS, ModelError(doc, cls, err, path, leaf))
    return found[0] if found else _invalid_value(ModelError(doc, cls, err, path, None))


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
