"""Policies: an organisation's own rules, as cerberus schemas over matching documents."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cerberus
from cerberus.errors import BasicErrorHandler, ValidationError

from compiler.diagnostics import Diagnostic, Severity
from compiler.loader.yamldoc import Path_
from compiler.spec.policy import Policy
from compiler.validate.document import SpecDocument
from compiler.validate.index import SpecIndex

_MESSAGES = BasicErrorHandler.messages


@dataclass(frozen=True)
class _Compiled:
    doc: SpecDocument
    policy: Policy
    validator: cerberus.Validator


def _leaves(errors: list[ValidationError]) -> Iterator[ValidationError]:
    for err in errors:
        if err.is_group_error and err.child_errors:
            yield from _leaves(err.child_errors)
        else:
            yield err


def _explain(err: ValidationError) -> str:
    template = _MESSAGES.get(err.code, "violates rule {constraint}")
    try:
        text = template.format(*err.info, constraint=err.constraint, field=err.field, value=err.value)
    except (IndexError, KeyError, ValueError):
        text = f"violates {err.rule}"
    where = ".".join(str(p) for p in err.document_path)
    return f"{where}: {text}" if where else text


def _bad_regexes(node: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    """Regexes that would only fail when a document reaches them, found before any does."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "regex" and isinstance(value, str):
                try:
                    re.compile(value)
                except re.error as exc:
                    yield (*path, key), str(exc)
            else:
                yield from _bad_regexes(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _bad_regexes(value, (*path, i))


def _compile(index: SpecIndex, out: list[Diagnostic]) -> list[_Compiled]:
    compiled = []
    for doc in index.valid("Policy"):
        policy: Policy = doc.model
        bad = list(_bad_regexes(doc.data["spec"]["schema"], ("spec", "schema")))
        for path, problem in bad:
            out.append(doc.diag("TAKT8001", f"invalid regex: {problem}", path))
        if bad:
            continue
        try:
            validator = cerberus.Validator(policy.spec.rules, allow_unknown=True)
        except Exception as exc:  # noqa: BLE001 - SchemaError and friends: the user's schema is wrong
            out.append(doc.diag("TAKT8001", f"invalid cerberus schema: {exc}", ("spec", "schema")))
            continue
        compiled.append(_Compiled(doc, policy, validator))
    return compiled


def check_policies(index: SpecIndex) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    policies = _compile(index, out)
    for doc in index.documents:
        if doc.model is None or doc.kind == "Policy":
            continue
        for c in policies:
            applies = c.policy.spec.applies_to
            if doc.kind not in applies.kinds or (applies.selector and not applies.selector.matches(doc.labels)):
                continue
            try:
                ok = c.validator.validate(doc.data)
            except Exception as exc:  # noqa: BLE001 - a user rule that fails while running
                out.append(
                    c.doc.diag("TAKT8001", f"policy failed on {doc.kind} {doc.name!r}: {exc}", ("spec", "schema"))
                )
                continue
            if ok:
                continue
            severity = Severity.parse(c.policy.spec.severity)
            for err in _leaves(list(c.validator._errors)):
                path = tuple(err.document_path)
                missing = err.rule == "required"
                out.append(
                    doc.diag(
                        c.policy.spec.rule_id,
                        f"{c.policy.spec.message} ({_explain(err)})",
                        path[:-1] if missing else path,
                        key=missing,
                        hint=f"policy {c.policy.metadata.name!r}",
                        related=[c.doc.locate(("metadata", "name"))],
                    ).with_severity(severity)  # a user rule: its severity is its Policy's, the user's rule table
                )
    return out
