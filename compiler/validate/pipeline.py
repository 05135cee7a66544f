"""One validation run: discover → load → structure → references → semantics → policies → silence.

Every stage runs on what earlier stages accepted, so one run reports every independent error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.diagnostics import Diagnostic, Severity, sort_diagnostics
from compiler.gcpause import collections_paused
from compiler.loader.source import DEFAULT_MAX_FILE_BYTES, SourceText
from compiler.loader.yamldoc import STOPS_FILE
from compiler.models.digest import DigestCache
from compiler.project import Project
from compiler.validate.discover import discover, display_path
from compiler.validate.doc_cache import DocumentCache, cache_path
from compiler.validate.document import SpecDocument
from compiler.validate.files import load_files
from compiler.validate.ignores import check_ignores
from compiler.validate.index import SpecIndex, build_index, resolve_targets
from compiler.validate.modbus_outputs import check_modbus_outputs
from compiler.validate.policies import check_policies
from compiler.validate.protocols import check_protocols
from compiler.validate.references import check_references
from compiler.validate.rollouts import check_rollouts
from compiler.validate.semantics import check_semantics
from compiler.validate.suppress import Suppressions
from compiler.workers import default_jobs

if TYPE_CHECKING:
    from compiler.models.inspect_cache import InspectCache
    from compiler.validate.models import ModelCheckResult
    from compiler.validate.probe_cache import ProbeCache

Progress = Callable[[int, int], None]
CACHE_DIR = ".takt-cache"  # digests of unchanged artifacts are never recomputed


@dataclass
class ValidationResult:
    root: Path
    project: Project | None
    files: list[str]
    documents: list[SpecDocument]
    index: SpecIndex
    diagnostics: list[Diagnostic]
    sources: dict[str, SourceText] = field(default_factory=dict)
    silenced: int = 0
    models: ModelCheckResult = field(default_factory=lambda: _model_check_result())

    def count(self, severity: Severity) -> int:
        return sum(1 for d in self.diagnostics if d.severity == severity)


def validate(
    path: Path,
    *,
    ignore: Iterable[str] = (),
    only: Iterable[Path] | None = None,
    progress: Progress | None = None,
    check_artifacts: bool = True,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    jobs: int = 0,
) -> ValidationResult:
    """Validate the project containing `path`.

    `check_artifacts` reads models and datasets (digests, ONNX checks, runtime compatibility).
    `only` restricts reported findings to some files (the whole project is still loaded, so
    references across files resolve), which is what pre-commit style callers pass. `jobs` is how many
    processes may load uncached files (0: one per core; they fork only when there is enough to load).
    """
    with collections_paused():
        return _validate(path, ignore, only, progress, check_artifacts, cache_dir, use_cache, jobs)


def _validate(
    path: Path,
    ignore: Iterable[str],
    only: Iterable[Path] | None,
    progress: Progress | None,
    check_artifacts: bool,
    cache_dir: Path | None,
    use_cache: bool,
    jobs: int,
) -> ValidationResult:
    disc = discover(path)
    limit = disc.project.spec.limits.max_file_bytes if disc.project else DEFAULT_MAX_FILE_BYTES
    diags = list(disc.diagnostics)
    sources: dict[str, SourceText] = {}
    if disc.project_source:
        sources[disc.project_source.display] = disc.project_source
    documents: list[SpecDocument] = []
    suppress = Suppressions()
    unparsed: dict[str, str] = {}
    doc_cache = _open_cache(disc.root, cache_dir) if use_cache else None
    displays = [display_path(f) for f in disc.files]  # each resolves the file and the cwd: once per file
    loaded = load_files(disc.files, displays, limit, disc.root, doc_cache, jobs or default_jobs(), progress)
    for got in loaded:
        if isinstance(got, Diagnostic):
            diags.append(got)
            continue
        display, outcome = got.source.display, got.outcome
        sources[display] = got.source
        suppress.inline[display] = outcome.inline
        diags.extend(outcome.diagnostics)
        if any(d.code in STOPS_FILE for d in outcome.diagnostics):
            unparsed[display] = got.source.text
        for doc in outcome.documents:
            documents.append(doc)
            suppress.add_document(doc)
    if doc_cache:
        doc_cache.save()

    index = build_index(documents)
    index.unparsed = unparsed
    resolve_targets(index)
    for stage in (check_references, check_protocols, check_modbus_outputs, check_semantics, check_rollouts):
        diags += stage(index)
    models = _model_check_result()
    if check_artifacts:
        from compiler.validate.models import check_models  # reads ONNX: only when artifacts are checked

        cache = DigestCache.load(disc.root / CACHE_DIR / "digests.json")
        inspections = _open_inspections(cache_dir) if use_cache else None
        probes = _open_probes(cache_dir) if use_cache else None
        mdiags, models = check_models(index, disc.root, cache, inspections, probes)
        diags += mdiags
        cache.save()
        if inspections:
            inspections.save()
        if probes:
            probes.save()
    diags += check_policies(index)

    codes = {c.strip().upper() for c in ignore if c.strip()}
    if disc.project:
        codes |= {c.upper() for c in disc.project.spec.ignore}
    diags += check_ignores(codes, index, disc.root)
    suppress.global_codes = frozenset(codes)
    if only is not None:
        wanted = {display_path(p) for p in only}
        diags = [d for d in diags if d.location.file in wanted]
    kept, silenced = suppress.apply(diags)
    return ValidationResult(
        root=disc.root,
        project=disc.project,
        files=displays,
        documents=documents,
        index=index,
        diagnostics=sort_diagnostics(kept),
        sources=sources,
        silenced=silenced,
        models=models,
    )


def _model_check_result() -> ModelCheckResult:
    from compiler.validate.models import ModelCheckResult

    return ModelCheckResult()


def _open_cache(root: Path, cache_dir: Path | None) -> DocumentCache:
    from compiler.build_cache import load_secret, user_cache_dir

    directory = cache_dir or user_cache_dir()
    return DocumentCache.load(cache_path(directory, root), load_secret(directory))


def _open_inspections(cache_dir: Path | None) -> InspectCache:
    from compiler.build_cache import load_secret, user_cache_dir
    from compiler.models.inspect_cache import FILE_NAME, InspectCache

    directory = cache_dir or user_cache_dir()
    return InspectCache.load(directory / FILE_NAME, load_secret(directory))


def _open_probes(cache_dir: Path | None) -> ProbeCache:
    from compiler.build_cache import load_secret, user_cache_dir
    from compiler.validate.probe_cache import FILE_NAME, ProbeCache

    directory = cache_dir or user_cache_dir()
    return ProbeCache.load(directory / FILE_NAME, load_secret(directory))
