"""Policies: an organisation's own rules, as cerberus schemas over matching documents."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cerberus
from cerberus.errors import BasicErrorHandler, ValidationError

from compiler.diagnostics import Diagnostic, Severity
from compiler.loader.yamldoc import Path_
from compiler.spec.policy import Policy
from compiler.validate.checks import Check, run_checks
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


@dataclass(frozen=True)
class _Refused:
    """A Policy that cannot run (TAKT8001): a bad regex or schema, or a rule that failed on a document."""

    doc: SpecDocument
    message: str
    path: Path_


@dataclass(frozen=True)
class _Violation:
    policy: _Compiled
    doc: SpecDocument
    error: ValidationError


@dataclass
class PolicyRun:
    """Every Policy compiled and run once over the documents it applies to: the subject of the checks."""

    refused: list[_Refused] = field(default_factory=list)
    violations: list[_Violation] = field(default_factory=list)


def _compile(index: SpecIndex, run: PolicyRun) -> list[_Compiled]:
    compiled = []
    for doc in index.valid("Policy"):
        policy: Policy = doc.model
        bad = list(_bad_regexes(doc.data["spec"]["schema"], ("spec", "schema")))
        run.refused.extend(_Refused(doc, f"invalid regex: {problem}", path) for path, problem in bad)
        if bad:
            continue
        try:
            validator = cerberus.Validator(policy.spec.rules, allow_unknown=True)
        except Exception as exc:  # noqa: BLE001 - SchemaError and friends: the user's schema is wrong
            run.refused.append(_Refused(doc, f"invalid cerberus schema: {exc}", ("spec", "schema")))
            continue
        compiled.append(_Compiled(doc, policy, validator))
    return compiled


def run_policies(index: SpecIndex) -> PolicyRun:
    run = PolicyRun()
    policies = _compile(index, run)
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
                run.refused.append(
                    _Refused(c.doc, f"policy failed on {doc.kind} {doc.name!r}: {exc}", ("spec", "schema"))
                )
                continue
            if not ok:
                run.violations.extend(_Violation(c, doc, err) for err in _leaves(list(c.validator._errors)))
    return run


def policies_run(run: PolicyRun) -> Iterator[Diagnostic]:
    """TAKT8001: every Policy compiles, and runs on each document it applies to."""
    for r in run.refused:
        yield r.doc.diag("TAKT8001", r.message, r.path)


def placed_violations(run: PolicyRun) -> Iterator[Diagnostic]:
    """The users' own rules: each violation under its Policy's id and severity (the user's rule table)."""
    for v in run.violations:
        c, err = v.policy, v.error
        path = tuple(err.document_path)
        missing = err.rule == "required"
        yield v.doc.diag(
            c.policy.spec.rule_id,
            f"{c.policy.spec.message} ({_explain(err)})",
            path[:-1] if missing else path,
            key=missing,
            hint=f"policy {c.policy.metadata.name!r}",
            related=[c.doc.locate(("metadata", "name"))],
        ).with_severity(Severity.parse(c.policy.spec.severity))


CHECKS: tuple[Check[PolicyRun, Diagnostic], ...] = (Check("TAKT8001", policies_run),)


def check_policies(index: SpecIndex) -> list[Diagnostic]:
    run = run_policies(index)
    return run_checks(CHECKS, run) + list(placed_violations(run))
