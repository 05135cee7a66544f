"""Where a command's deploy repo, branch and key are, from the command line or takt.yaml.

A path given on the command line is relative to the working directory, as in every Unix tool; a
path written in takt.yaml is relative to the project root (the folder holding takt.yaml), so a
repo behaves the same from wherever it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compiler.commands.errors import UsageError
from compiler.project import Project

DEFAULT_BRANCH = "deploy"


def is_url(location: str) -> bool:
    """A remote Git location (scheme://… or scp-like user@host:path) rather than a local path."""
    return "://" in location or location.startswith("git@")


def resolve_location(location: str, base: Path) -> str:
    """A URL unchanged; a local path made absolute against `base`."""
    if is_url(location):
        return location
    return str((base / location).resolve())


def resolve_key_ref(ref: str, base: Path) -> str:
    """`env:VAR` unchanged; a file path or `file:PATH` made absolute against `base`."""
    if ref.startswith("env:") or "\n" in ref or "-----BEGIN" in ref:
        return ref  # key material in a reference is refused by the loader, never echoed
    path = ref.removeprefix("file:")
    return "file:" + str((base / path).resolve()) if ref.startswith("file:") else str((base / path).resolve())


@dataclass(frozen=True)
class DeployOptions:
    """What the command line gave; None takes takt.yaml's setting."""

    repo: str | None = None
    branch: str | None = None
    key_ref: str | None = None


@dataclass(frozen=True)
class DeployLocation:
    url: str
    """An absolute path or a URL."""
    branch: str
    key_ref: str | None
    """An absolute file path, `file:` + one, or `env:VAR`; None when the command needs no key."""


def resolve_deploy(
    options: DeployOptions, project: Project | None, root: Path, cwd: Path, *, need_key: bool
) -> DeployLocation:
    """The deploy repo, branch and (when `need_key`) signing key, or a UsageError saying what is missing."""
    deploy = project.spec.deploy if project else None
    signing = project.spec.signing if project else None
    if options.repo:
        url = resolve_location(options.repo, cwd)
    elif deploy is not None:
        url = resolve_location(deploy.repo, root)
    else:
        url = ""
    key_ref: str | None = None
    if options.key_ref:
        key_ref = resolve_key_ref(options.key_ref, cwd)
    elif signing is not None:
        key_ref = resolve_key_ref(signing.key_ref, root)
    missing = [what for what, ok in (("--deploy-repo", url), ("--key", key_ref or not need_key)) if not ok]
    if missing:
        settings = "spec.deploy / spec.signing" if need_key else "spec.deploy.repo"
        raise UsageError(f"give {' and '.join(missing)} (or {settings} in takt.yaml)")
    branch = options.branch or (deploy.branch if deploy else DEFAULT_BRANCH)
    return DeployLocation(url, branch, key_ref if need_key else None)
