"""The runner's view of a release: `deployments/<deployment>` → `../bundles/<digest>`, and for a
shadow challenger `shadow/<deployment>` → `../bundles/<challenger digest>`.

A bundle is named `<deployment>/<target>` and a device runs one bundle per deployment, so the
runner finds its files at `current/deployments/<deployment>/` without knowing any digest, and a
challenger beside it at `current/shadow/<deployment>/`, with the runner's shadow entry
(`takt/shadow/v1`) at `current/shadow/<deployment>.json` for `takt-runner --shadow`. These links
and entries are the only ones a release may hold; verification accepts exactly them, byte for byte.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from compiler.bundle import BundleRef
from compiler.bundle.runner import DEFAULT_SHADOW_WINDOW, RUNNER_JSON, ShadowEntry

DEPLOYMENTS = "deployments"
SHADOW = "shadow"
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def deployment_of(bundle_name: str) -> str:
    """The deployment part of `<deployment>/<target>`; ValueError unless a safe single path segment."""
    deployment, slash, target = bundle_name.partition("/")
    if not slash or not target or not _SEGMENT.fullmatch(deployment):
        raise ValueError(f"bundle name {bundle_name[:80]!r} is not <deployment>/<target> with a plain deployment name")
    return deployment


def deployment_links(bundles: Iterable[BundleRef]) -> dict[str, dict[str, str]]:
    """{directory: {deployment: link target}}; ValueError on a bad name, a second bundle for one
    deployment, or a challenger for a deployment the device does not run."""
    links: dict[str, dict[str, str]] = {DEPLOYMENTS: {}, SHADOW: {}}
    refs = list(bundles)
    for ref in refs:
        deployment = deployment_of(ref.name)
        kind = SHADOW if ref.shadow is not None else DEPLOYMENTS
        if deployment in links[kind]:
            what = "challengers" if kind == SHADOW else "bundles"
            raise ValueError(f"two {what} for deployment {deployment!r}; a device runs one per deployment")
        links[kind][deployment] = f"../bundles/{ref.digest}"
    orphans = sorted(set(links[SHADOW]) - set(links[DEPLOYMENTS]))
    if orphans:
        raise ValueError(f"a shadow challenger for {orphans[0]!r} needs a current bundle of that deployment")
    if not links[SHADOW]:
        del links[SHADOW]
    return links


def shadow_entries(bundles: Iterable[BundleRef]) -> dict[str, bytes]:
    """`shadow/<deployment>.json` → the runner's shadow entry, derived from the signed state alone."""
    return {
        f"{deployment_of(b.name)}.json": ShadowEntry(
            deployment=deployment_of(b.name),
            challenger=b.digest,
            config=f"{deployment_of(b.name)}/{RUNNER_JSON}",
            tolerance=b.shadow.tolerance,
            window=DEFAULT_SHADOW_WINDOW if b.shadow.window is None else b.shadow.window,
        ).to_json()
        for b in bundles
        if b.shadow is not None
    }


def write_links(release: Path, bundles: Iterable[BundleRef]) -> None:
    refs = list(bundles)
    for kind, links in deployment_links(refs).items():
        (release / kind).mkdir()
        for deployment, target in links.items():
            os.symlink(target, release / kind / deployment)
    for name, data in shadow_entries(refs).items():
        (release / SHADOW / name).write_bytes(data)


def check_links(release: Path, bundles: Iterable[BundleRef]) -> list[str]:
    """Problems unless `deployments/` (and `shadow/`) hold exactly the expected links, each pointing where it should."""
    refs = list(bundles)
    try:
        expected_all = deployment_links(refs)
        entries = shadow_entries(refs)
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    if SHADOW not in expected_all and (release / SHADOW).exists():
        problems.append(f"{SHADOW}: unexpected entry")
    for kind, expected in expected_all.items():
        top = release / kind
        if top.is_symlink() or not top.is_dir():
            problems.append(f"{kind}/ is missing or not a directory")
            continue
        seen = set()
        with os.scandir(top) as it:
            for entry in sorted(it, key=lambda e: e.name):
                seen.add(entry.name)
                if kind == SHADOW and entry.name in entries:
                    problems += _entry_problems(Path(entry.path), entries[entry.name], f"{kind}/{entry.name}")
                    continue
                want = expected.get(entry.name)
                if want is None:
                    problems.append(f"{kind}/{entry.name}: unexpected entry")
                elif not entry.is_symlink():
                    problems.append(f"{kind}/{entry.name}: not a symbolic link")
                elif (got := os.readlink(entry.path)) != want:
                    problems.append(f"{kind}/{entry.name}: points at {got[:200]!r}, expected {want!r}")
        wanted = set(expected) | (set(entries) if kind == SHADOW else set())
        problems += [f"{kind}/{name}: missing" for name in sorted(wanted - seen)]
    return problems


def _entry_problems(path: Path, want: bytes, where: str) -> list[str]:
    if path.is_symlink() or not path.is_file():
        return [f"{where}: not a regular file"]
    with path.open("rb") as fh:
        got = fh.read(len(want) + 1)
    return [] if got == want else [f"{where}: differs from the signed state"]
