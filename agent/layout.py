"""The runner's view of a release: `deployments/<deployment>` → `../bundles/<digest>`.

A bundle is named `<deployment>/<target>` and a device runs one bundle per deployment, so the
runner finds its files at `current/deployments/<deployment>/` without knowing any digest. These
links are the only ones a release may hold; verification accepts exactly them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from compiler.bundle import BundleRef

DEPLOYMENTS = "deployments"
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def deployment_of(bundle_name: str) -> str:
    """The deployment part of `<deployment>/<target>`; ValueError unless a safe single path segment."""
    deployment, slash, target = bundle_name.partition("/")
    if not slash or not target or not _SEGMENT.fullmatch(deployment):
        raise ValueError(f"bundle name {bundle_name[:80]!r} is not <deployment>/<target> with a plain deployment name")
    return deployment


def deployment_links(bundles: Iterable[BundleRef]) -> dict[str, str]:
    """deployment → link target; ValueError on a bad name or a second bundle for one deployment."""
    links: dict[str, str] = {}
    for ref in bundles:
        deployment = deployment_of(ref.name)
        if deployment in links:
            raise ValueError(f"two bundles for deployment {deployment!r}; a device runs one per deployment")
        links[deployment] = f"../bundles/{ref.digest}"
    return links


def write_links(release: Path, bundles: Iterable[BundleRef]) -> None:
    (release / DEPLOYMENTS).mkdir()
    for deployment, target in deployment_links(bundles).items():
        os.symlink(target, release / DEPLOYMENTS / deployment)


def check_links(release: Path, bundles: Iterable[BundleRef]) -> list[str]:
    """Problems unless `deployments/` holds exactly the expected links, each pointing where it should."""
    try:
        expected = deployment_links(bundles)
    except ValueError as exc:
        return [str(exc)]
    top = release / DEPLOYMENTS
    if top.is_symlink() or not top.is_dir():
        return [f"{DEPLOYMENTS}/ is missing or not a directory"]
    problems, seen = [], set()
    with os.scandir(top) as it:
        for entry in sorted(it, key=lambda e: e.name):
            seen.add(entry.name)
            want = expected.get(entry.name)
            if want is None:
                problems.append(f"{DEPLOYMENTS}/{entry.name}: unexpected entry")
            elif not entry.is_symlink():
                problems.append(f"{DEPLOYMENTS}/{entry.name}: not a symbolic link")
            elif (got := os.readlink(entry.path)) != want:
                problems.append(f"{DEPLOYMENTS}/{entry.name}: points at {got[:200]!r}, expected {want!r}")
    problems += [f"{DEPLOYMENTS}/{name}: missing" for name in sorted(set(expected) - seen)]
    return problems
