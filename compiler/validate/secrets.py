"""Literal secrets in specs: specs live in Git, so a secret there is a leak.

Two signals: a secret-like key holding a literal, and values shaped like well-known
credentials. Messages never repeat the secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from compiler.diagnostics import Diagnostic
from compiler.loader.yamldoc import Path_
from compiler.spec.types import SECRET_REF_PATTERN
from compiler.validate.checks import Check, run_checks
from compiler.validate.document import SpecDocument

_SECRET_KEYS = {
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "apitoken",
    "accesskey",
    "secretkey",
    "privatekey",
    "clientsecret",
    "bearer",
    "authtoken",
    "accesstoken",
    "passphrase",
    "credentials",
}
_REF_RE = re.compile(SECRET_REF_PATTERN)
_PATTERNS = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a PEM private key"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"), "a GitHub token"),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"), "a GitLab token"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), "a JSON web token"),
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
]


def _norm(key: str) -> str:
    return re.sub(r"[-_.]", "", key).lower()


def _strings(data: Any, path: Path_) -> Iterator[tuple[Path_, str | None, str]]:
    if isinstance(data, dict):
        for k, v in data.items():
            if isinstance(v, str):
                yield (*path, k), k, v
            else:
                yield from _strings(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            if isinstance(v, str):
                yield (*path, i), None, v
            else:
                yield from _strings(v, (*path, i))


def find_secrets(doc: SpecDocument) -> list[Diagnostic]:
    return run_checks(CHECKS, doc)


def no_literal_secrets(doc: SpecDocument) -> Iterator[Diagnostic]:
    """TAKT1010: no secret written into a spec (a key that names one, or a value that looks like one)."""
    out: list[Diagnostic] = []
    for path, key, value in _strings(doc.data, ()):
        if not value.strip():
            continue
        if key is not None and key.endswith("Ref") and not _REF_RE.match(value):
            out.append(
                doc.diag(
                    "TAKT1010",
                    f"field {key!r} holds a literal where a secret reference belongs",
                    path,
                    hint="write a reference such as `vault:<path>` or `env:<VAR>`; if the value was a real "
                    "secret, rotate it: Git history keeps it",
                )
            )
            continue
        if key is not None and not key.endswith("Ref") and _norm(key) in _SECRET_KEYS and not _REF_RE.match(value):
            out.append(
                doc.diag(
                    "TAKT1010",
                    f"field {key!r} holds a literal secret",
                    path,
                    hint=f"move it to a secret store and write `{key}Ref: vault:<path>` "
                    "or `env:<VAR>`, if the kind supports it",
                )
            )
            continue
        for pattern, what in _PATTERNS:
            if pattern.search(value):
                out.append(
                    doc.diag(
                        "TAKT1010",
                        f"value looks like {what}",
                        path,
                        hint="remove it from the spec and rotate it: Git history keeps it",
                    )
                )
                break
    yield from out


CHECKS: tuple[Check[SpecDocument, Diagnostic], ...] = (Check("TAKT1010", no_literal_secrets),)
