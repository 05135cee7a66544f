"""The subject of the model stage: every model artifact, dataset and golden-samples file the specs name,
resolved, digested, inspected and probed once, so that each check only reads what was found."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.bundle.tree import TreeError, open_file
from compiler.loader.yamldoc import Path_
from compiler.models.compat import Problem
from compiler.models.digest import DigestCache
from compiler.models.inspect import ModelInfo, Unreadable
from compiler.models.inspect_cache import InspectCache
from compiler.spec.model import Model
from compiler.spec.testsuite import GoldenTest, TestSuite
from compiler.stores.locate import locate_path
from compiler.stores.located import Refused
from compiler.testing.dataset_types import DatasetError, Probe, infer_format
from compiler.validate import stored
from compiler.validate.document import SpecDocument, Valid
from compiler.validate.index import SpecIndex
from compiler.validate.probe_cache import ProbeCache
from compiler.validate.stored import CannotRead, DigestDiffers, Escapes, Found, Outcome


@dataclass
class ModelCheckResult:
    """What later stages (matrix, test, build) reuse instead of reading models again."""

    infos: dict[str, ModelInfo] = field(default_factory=dict)  # model name → inspection
    runtime: dict[tuple[str, str], list[Problem]] = field(default_factory=dict)  # (model, target) → problems
    artifacts: dict[str, Path] = field(default_factory=dict)  # model name → the local file of its artifact
    lineage: dict[str, dict[str, Any]] = field(default_factory=dict)  # spec path or uri → DVC / MLflow lineage


@dataclass(frozen=True)
class FileRef:
    """One file a spec names and what resolving it gave."""

    doc: SpecDocument
    rel: str
    at: Path_  # the spec key naming the file
    what: str  # "model artifact", "dataset", "golden samples"
    outcome: Outcome
    sha_at: Path_ = ()  # the key of its pinned digest (TAKT5002)


@dataclass(frozen=True)
class Inspected:
    """A model artifact that was found: what onnx made of it."""

    doc: Valid[Model]
    at: Path_
    shown: str  # the spec's path or uri, as the user wrote it
    info: ModelInfo | Unreadable


@dataclass(frozen=True)
class Probed:
    """A TestSuite dataset that was found: its schema, or why it cannot be read."""

    doc: Valid[TestSuite]
    name: str
    rel: str
    probe: Probe | DatasetError


@dataclass
class ModelFiles:
    index: SpecIndex
    root: Path
    files: list[FileRef] = field(default_factory=list)
    inspected: list[Inspected] = field(default_factory=list)
    probed: list[Probed] = field(default_factory=list)
    result: ModelCheckResult = field(default_factory=ModelCheckResult)

    def outcomes(self, kind: type[Any]) -> Iterator[tuple[FileRef, Any]]:
        """The files whose resolution gave an outcome of `kind`."""
        for f in self.files:
            if isinstance(f.outcome, kind):
                yield f, f.outcome

    def probes(self, doc: SpecDocument) -> dict[str, Probe]:
        return {p.name: p.probe for p in self.probed if p.doc is doc and isinstance(p.probe, Probe)}


def resolve(
    index: SpecIndex,
    root: Path,
    cache_dir: Path,
    cache: DigestCache,
    inspections: InspectCache,
    env: Mapping[str, str],
    probes: ProbeCache | None = None,
) -> ModelFiles:
    """Resolve every file once (the checks share the outcomes); fills the result later stages reuse."""
    files = ModelFiles(index, root)
    probes = probes or ProbeCache(None)
    lineage = files.result.lineage
    for doc in index.valid("Model"):
        art = doc.model.spec.artifact
        if stored.is_mlflow(art):
            assert art.uri is not None
            ref = FileRef(
                doc,
                art.uri,
                ("spec", "artifact", "uri"),
                "model artifact",
                stored.remote_model(art, cache_dir, env, lineage),
            )
        elif art.path is None:
            continue  # remote: fetched and checked at build time (TAKT5018)
        else:
            ref = _pinned(doc, root, art.path, art.sha256, ("spec", "artifact"), cache, "model artifact", lineage)
        files.files.append(ref)
        if isinstance(ref.outcome, Found):
            name = doc.model.metadata.name
            files.result.artifacts[name] = ref.outcome.path
            info = inspections.inspect(ref.outcome.path, cache)
            shown = art.path or art.uri or ""
            files.inspected.append(Inspected(doc, ("spec", "artifact", "path" if art.path else "uri"), shown, info))
            if not isinstance(info, Unreadable):
                files.result.infos[name] = info
    for suite in index.valid("TestSuite"):
        for name, ds in suite.model.spec.datasets.items():
            ref = _pinned(suite, root, ds.path, ds.sha256, ("spec", "datasets", name), cache, "dataset", lineage)
            files.files.append(ref)
            if isinstance(ref.outcome, Found):
                files.probed.append(Probed(suite, name, ds.path, _probe(root, ds.path, ds.format, cache, probes)))
        for i, test in enumerate(suite.model.spec.tests):
            if isinstance(test, GoldenTest):
                at = ("spec", "tests", i, "samples")
                outcome = stored.locate_file(root, test.samples, at, "golden samples", lineage, dvc=False)
                files.files.append(FileRef(suite, test.samples, at, "golden samples", outcome))
    return files


def _probe(root: Path, rel: str, fmt: str | None, digests: DigestCache, probes: ProbeCache) -> Probe | DatasetError:
    """Only metadata (a Parquet footer, an IPC schema, the first CSV block), so validate stays fast; from the
    probe cache when a file of the same bytes was probed as the same format (numpy and pyarrow are then never
    imported). A file that cannot be located, read or digested is probed uncached: its error is about the tree."""
    try:
        fmt_used = infer_format(rel, fmt)
        path = locate_path(root, rel)  # the file open_dataset reads (DVC's cached copy when DVC tracks it)
        before = _identity(path)
        sha = digests.sha256(path)
        with open_file(path, rel):
            pass  # readable as the probe opens it: an open failure is never cached as the bytes' verdict
    except (DatasetError, TreeError, OSError, Refused):
        return _probe_uncached(root, rel, fmt)

    def unchanged() -> bool:  # a file rewritten while it was probed must not be cached under the old digest
        try:
            return _identity(path) == before
        except OSError:
            return False

    return probes.probe(sha, fmt_used, lambda: _open_probe(root, rel, fmt), unchanged)


def _identity(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _open_probe(root: Path, rel: str, fmt: str | None) -> Probe:
    from compiler.testing.datasets import open_dataset  # numpy and pyarrow: only when a probe is not cached

    return open_dataset(root, rel, fmt).probe()


def _probe_uncached(root: Path, rel: str, fmt: str | None) -> Probe | DatasetError:
    try:
        return _open_probe(root, rel, fmt)
    except DatasetError as exc:
        return exc


def _pinned(
    doc: SpecDocument,
    root: Path,
    rel: str,
    sha: str | None,
    base: Path_,
    cache: DigestCache,
    what: str,
    lineage: dict[str, dict[str, Any]],
) -> FileRef:
    """A file with an optional pinned digest: located, then (when pinned) digested through the cache."""
    at = (*base, "path")
    outcome = stored.locate_file(root, rel, at, what, lineage)
    if sha is not None and isinstance(outcome, Found):
        outcome = _digest(outcome, sha, cache)
    return FileRef(doc, rel, at, what, outcome, (*base, "sha256"))


def _digest(found: Found, sha: str, cache: DigestCache) -> Outcome:
    try:
        actual = cache.sha256(found.path)
    except TreeError as exc:
        return Escapes(exc.reason)
    except OSError as exc:
        return CannotRead(str(exc.strerror or exc))
    return found if actual == sha else DigestDiffers(actual)
