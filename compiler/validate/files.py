"""The per-file stages of a validation (YAML, envelope and model, secrets) over every spec file: from the
document cache where a file is unchanged, else loaded — in worker processes when there is enough to load.

What one file yields depends on its path and text alone, so files load independently; the outcome of a
file loaded in a worker comes back as the pickled, compacted outcome the document cache keeps, which is
what a cache hit gives (tests/test_doc_cache.py holds a warm run to a cold one's findings,
tests/test_parallel_load.py a pooled run to a serial one's). Outcomes are taken in file order whichever
process loaded them, so documents and diagnostics keep their order.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compiler.diagnostics import Diagnostic
from compiler.loader.source import SourceText, inline_ignores, read_source
from compiler.loader.yamldoc import load_documents
from compiler.validate.doc_cache import DocumentCache, FileOutcome, compact
from compiler.validate.secrets import find_secrets
from compiler.validate.structure import load_spec_document
from compiler.workers import worker_map

# Text of uncached files below which one process loads them faster than forking workers (~2 ms per KiB
# of spec YAML; starting a pool of a process that imported the spec models costs ~0.1 s).
MIN_PARALLEL_BYTES = 128 << 10


@dataclass(frozen=True)
class LoadedFile:
    source: SourceText  # its display path names the file in diagnostics
    outcome: FileOutcome


def load_files(
    files: list[Path],
    displays: list[str],
    limit: int,
    root: Path,
    cache: DocumentCache | None,
    jobs: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[LoadedFile | Diagnostic]:
    """Each file's outcome (or the diagnostic that it cannot be read), in the order of `files`."""
    out: list[LoadedFile | Diagnostic | None] = []
    misses: list[tuple[int, str, SourceText, Path]] = []  # (position, cache key, source, file)
    done = 0
    for file, display in zip(files, displays, strict=True):
        source = read_source(file, display, limit, root)
        if isinstance(source, Diagnostic):
            out.append(source)
            done += 1
            continue
        key = DocumentCache.key(file, display, source.text) if cache else ""
        outcome = cache.get(key) if cache else None
        if outcome is None:
            misses.append((len(out), key, source, file))
            out.append(None)
        else:
            out.append(LoadedFile(source, outcome))
            done += 1
    if progress:
        progress(done, len(files))
    enough = sum(len(source.text) for _, _, source, _ in misses) >= MIN_PARALLEL_BYTES
    pooled = enough and jobs > 1 and len(misses) > 1
    if pooled:
        _build_spec_models()  # once here, not once in every worker
    with worker_map(min(jobs, len(misses)), pooled) as pmap:  # a worker that dies leaves its files to this process
        tasks = [(source, file) for _, _, source, file in misses]
        blobs = pmap(_load_blob, tasks) if pooled else iter([None] * len(tasks))
        for (pos, key, source, file), blob in zip(misses, blobs, strict=True):
            outcome = _unpickled(blob) if blob is not None else None
            if outcome is None:  # loaded here: too little to fork for, or its outcome could not be pickled
                outcome = _loaded(source, file, key, cache)
            elif cache:
                cache.put_blob(key, blob)
            out[pos] = LoadedFile(source, outcome)
            done += 1
            if progress:
                progress(done, len(files))
    return [r for r in out if r is not None]


def load_file(source: SourceText, file: Path) -> FileOutcome:
    """The per-file stages: YAML, envelope and model, secrets; nothing here looks at another file."""
    ydocs, ydiags = load_documents(source)
    diags = list(ydiags)
    documents = []
    for ydoc in ydocs:
        doc, sdiags = load_spec_document(ydoc, file)
        diags.extend(sdiags)
        if doc is not None:
            documents.append(doc)
            diags.extend(find_secrets(doc))
    return FileOutcome(documents, diags, inline_ignores(source.text))


def _loaded(source: SourceText, file: Path, key: str, cache: DocumentCache | None) -> FileOutcome:
    outcome = load_file(source, file)
    if cache:
        cache.put(key, outcome)  # now, before later stages could touch its documents
    return outcome


def _load_blob(task: tuple[SourceText, Path]) -> bytes | None:
    """A file's outcome as the cache keeps it (None: it cannot be pickled); run in a worker."""
    try:
        return pickle.dumps(compact(load_file(*task)), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return None


def _unpickled(blob: bytes) -> FileOutcome | None:
    outcome = pickle.loads(blob)  # made by this program's own worker a moment ago
    return outcome if isinstance(outcome, FileOutcome) else None


def _build_spec_models() -> None:
    """Complete the spec models' deferred validators and serializers before forking, so each worker
    inherits them instead of building them again."""
    from compiler.spec.kinds import KINDS

    for model in KINDS.values():
        model.model_rebuild()
