"""`takt build`: one bundle per (deployment, target), in parallel, incrementally.

A bundle is rendered again only when the hash of everything it depends on changes (specs;
model, sample, recording and dataset bytes; the target class's own files; the compiler's source,
version and libraries); otherwise the bundle
already in the output directory is verified and reused. Output is byte-for-byte reproducible:
no absolute paths, no timestamps.

Bundles are addressed by content alone: their provenance names the spec documents, model and
datasets by digest, the compiler and the target, but not the Git commit. A commit that changes
nothing a device runs (a README, another plant's specs) then yields the same digests and
redeploys nothing. The commit is recorded in index.json, in every desired.json, and in the
deploy branch's commit message.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler import __version__
from compiler.build_cache import BuildCache, CacheEntry, load_secret, tree_stamp
from compiler.bundle import canonical_json, verify_bundle, write_bundle
from compiler.bundle import runner as contract
from compiler.bundle.activation import Activation
from compiler.bundle.atomic import write_atomic
from compiler.bundle.tree import TreeError, first_link, read_regular, regular_inside
from compiler.commands.errors import CommandError, ExitCode
from compiler.diagnostics import Diagnostic, Severity
from compiler.gcpause import collections_paused
from compiler.models.digest import DigestCache
from compiler.models.inspect import PROTOBUF_LIMIT
from compiler.render.context import KnownReference, RenderError, RenderInput
from compiler.render.plugins import TargetClass, target_classes
from compiler.render.profile import ProfileError
from compiler.rollout.steps import rollout_spec
from compiler.spec.datasource import FileSource
from compiler.spec.deployment import Deployment
from compiler.spec.testsuite import GoldenTest, TestSuite
from compiler.stores.locate import locate_path
from compiler.stores.located import Refused
from compiler.testing.dataset_types import DEFAULT_MEMORY
from compiler.validate.pipeline import CACHE_DIR, ValidationResult
from compiler.validate.semantics import select_devices
from compiler.workers import worker_map

if TYPE_CHECKING:
    from compiler.testing.runner import SuiteResult

BUILD_CACHE = ".takt-build.json"


class BuildError(CommandError):
    """The build cannot start (an unusable output directory); the message says what to change."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class BuiltBundle:
    deployment: str
    target: str
    name: str
    digest: str
    devices: tuple[str, ...]
    reused: bool


@dataclass
class BuildResult:
    bundles: list[BuiltBundle] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    blocked: list[tuple[str, str]] = field(default_factory=list)  # (deployment, why no bundle)
    rollouts: dict[str, dict[str, Any]] = field(default_factory=dict)  # deployment → its steps, for publish

    @property
    def failed(self) -> bool:
        return bool(self.blocked) or any(d.severity == Severity.ERROR for d in self.diagnostics)


def source_provenance(root: Path) -> dict[str, Any]:
    """The spec repo's commit and its time (the only timestamp a bundle may carry).

    One `git log` process: importing GitPython and asking it whether the tree is dirty (a diff of
    every file) cost a fleet-sized build more than the answer, which no output carries."""
    try:
        proc = subprocess.run(
            ["git", "-c", "log.showSignature=false", "log", "-1", "--format=%H%n%cI", "HEAD", "--"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return {"sourceCommit": None}  # no git on this machine
    lines = proc.stdout.split()
    if proc.returncode != 0 or len(lines) != 2 or not re.fullmatch(r"[0-9a-f]{40,64}", lines[0]):
        return {"sourceCommit": None}  # not a Git checkout (or no commit yet): provenance says so
    return {"sourceCommit": lines[0], "sourceDate": lines[1]}


# What renders a bundle besides its target class's folder: the compiler (contract, render helpers,
# the build's own keys and provenance) and frames (reference bins), and the libraries whose output
# lands in bundle bytes. An edit between two releases of the same version (a git install, a checkout)
# must not leave the bundles of the old code in place.
_RENDER_CODE = ("compiler", "frames")
_RENDER_DISTS = ("ruamel.yaml", "jinja2", "numpy", "pyarrow", "onnx", "onnxruntime", "pydantic")


def render_code_stamp(base: Path, packages: tuple[str, ...], dists: tuple[str, ...]) -> str:
    """sha256 of every Python source under `base/<package>` and the installed version of each dist."""
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    for package in packages:
        _hash_files(h, base, sorted((base / package).rglob("*.py")))
    for dist in dists:
        try:
            h.update(f"{dist}=={version(dist)}\0".encode())
        except PackageNotFoundError:
            h.update(f"{dist} absent\0".encode())
    return h.hexdigest()


@functools.cache
def _render_code() -> str:
    return render_code_stamp(Path(__file__).resolve().parent.parent, _RENDER_CODE, _RENDER_DISTS)


def _fingerprint(tc: TargetClass) -> str:
    h = hashlib.sha256()
    _hash_files(h, tc.folder, [p for p in sorted(tc.folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts])
    return h.hexdigest()


def _hash_files(h: Any, base: Path, paths: list[Path]) -> None:
    """Each file's path below `base` and its bytes, in the order given (installed code, never a spec tree)."""
    for path in paths:
        h.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _gates(result: ValidationResult, progress: Callable[[str], None] | None) -> dict[str, SuiteResult]:
    """Run every suite some deployment gates on, once; suite name → its result."""
    from compiler.testing.session import run_suites

    names = sorted({g for d in result.index.valid("Deployment") for g in d.model.spec.gates})
    return {suite.suite: suite for suite in (run_suites(result, names, progress) if names else [])}


def gate_failures(
    suite: SuiteResult, target: str, target_class: str, on_build_host: bool
) -> tuple[list[str], list[str]]:
    """(why the suite blocks this target, what it could not judge for it).

    Latency is judged by the target's own budget (its entry, its class's, or the default); for a
    class whose devices the build host does not stand for, it is not judged at all, and said so.
    """
    if suite.error:
        return [suite.error], []
    failures, notes = [], []
    for r in suite.results:
        verdicts = r.details.get("verdicts") if r.type == "latency" and r.status != "error" else None
        if not r.gate:
            continue
        if verdicts is None:
            if r.blocks:
                failures.append(f"{r.name}: {r.summary}")
            continue
        if not on_build_host:
            where = r.details.get("measuredOn", {}).get("machine", "this")
            notes.append(
                f"{suite.suite}/{r.name} is not judged for {target}: a {target_class} device runs the model on its"
                f" own hardware, not on this {where} build host; measure its latency on the device"
            )
            continue
        key = next((k for k in (target, target_class, "budget") if k in verdicts), None)
        if key is None:
            notes.append(f"{suite.suite}/{r.name} has no budget for {target} ({target_class})")
        elif verdicts[key]["over"]:
            failures.append(
                f"{r.name} ({'budget' if key == 'budget' else 'budget for ' + key}): "
                + "; ".join(verdicts[key]["over"])
            )
    return failures, notes


def _lineage(model: Any, suites: tuple[TestSuite, ...], lineage: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where the model and the gates' datasets came from (DVC revision and md5, MLflow run, params and
    metrics), for the bundle's provenance; nothing for files that live in the spec tree."""
    art = model.spec.artifact
    out: dict[str, Any] = {}
    if (art.path or art.uri) in lineage:
        out["modelLineage"] = lineage[art.path or art.uri]
    data = {n: lineage[ds.path] for s in suites for n, ds in s.spec.datasets.items() if ds.path in lineage}
    if data:
        out["datasetLineage"] = data
    return out


def build(
    result: ValidationResult,
    out: Path,
    *,
    jobs: int = 2,
    run_gates: bool = True,
    progress: Callable[[str], None] | None = None,
    cache_secret_dir: Path | None = None,
) -> BuildResult:
    with collections_paused():
        return _build(result, out, jobs, run_gates, progress, cache_secret_dir)


def _build(
    result: ValidationResult,
    out: Path,
    jobs: int,
    run_gates: bool,
    progress: Callable[[str], None] | None,
    cache_secret_dir: Path | None,
) -> BuildResult:
    within = result.root.resolve() if Path(os.path.abspath(out)).is_relative_to(result.root.resolve()) else None
    for path in (out, out / "bundles", out / MODELS):  # a link here would make the build write or delete elsewhere
        link = first_link(path, within) if within is not None else (path if path.is_symlink() else None)
        if link is not None:
            raise BuildError(f"{link} is a symbolic link: the build output must be real directories")
    build_result = BuildResult()
    classes = target_classes()
    fingerprints = {name: _fingerprint(tc) for name, tc in classes.items()}
    provenance = source_provenance(result.root)
    cache = DigestCache.load(result.root / CACHE_DIR / "digests.json")
    sha_of = functools.cache(cache.sha256)  # each model and sample file is stat'ed and hashed once per build
    gates = _gates(result, progress) if run_gates else {}
    bundles_dir = out / "bundles"
    previous = BuildCache.load(out / BUILD_CACHE, load_secret(cache_secret_dir))
    jobs_in: list[tuple[str, RenderInput, TargetClass, Any]] = []
    sources = {d.name: d.model for d in result.index.valid("DataSource")}
    sources_digest = hashlib.sha256(canonical_json({k: _dump(v) for k, v in sources.items()})).hexdigest()
    digests: dict[int, tuple[Any, str]] = {}  # id → digest of models, targets, suites many bundles share
    resolved: dict[tuple[str, bool], Path | Exception] = {}  # (spec path, dataset?) → its checked real path

    def digest_of(model: Any) -> str:
        if id(model) not in digests:  # the model is kept with its digest so its id is never reused
            digests[id(model)] = (model, hashlib.sha256(canonical_json(_dump(model))).hexdigest())
        return digests[id(model)][1]

    def inside(rel: str, *, dataset: bool = False) -> Path:
        """The real file a spec path names, resolved once per build: in the tree, or for a dataset the
        file its readers open (DVC's cached copy when DVC tracks it)."""
        if (rel, dataset) not in resolved:
            try:
                resolved[rel, dataset] = locate_path(result.root, rel) if dataset else regular_inside(result.root, rel)
            except (TreeError, OSError, Refused) as exc:
                resolved[rel, dataset] = exc
        got = resolved[rel, dataset]
        if isinstance(got, Exception):
            raise got
        return got

    for dep_index, doc in enumerate(sorted(result.index.valid("Deployment"), key=lambda d: d.name or "")):
        dep: Deployment = doc.model
        blocked_on: dict[str, str] = {}  # target → why its bundle is not built
        for i, target_name in enumerate(dep.spec.targets):
            target = result.index.resolved_targets[target_name]
            tc = classes.get(target.class_ or "")
            why = []
            for g in dep.spec.gates:
                if g not in gates:
                    continue
                fails, gate_notes = gate_failures(
                    gates[g], target_name, target.class_ or "", tc is None or tc.latency_on_build_host
                )
                why += [f"gate {g} failed: {'; '.join(fails)}"] if fails else []
                build_result.diagnostics += [doc.diag("TAKT6004", note, ("spec", "targets", i)) for note in gate_notes]
            if why:
                blocked_on[target_name] = "; ".join(why)
        if blocked_on and len(blocked_on) == len(dep.spec.targets) and len(set(blocked_on.values())) == 1:
            build_result.blocked.append((dep.metadata.name, next(iter(blocked_on.values()))))
            continue
        build_result.blocked += [(f"{dep.metadata.name} on {t}", why) for t, why in blocked_on.items()]
        model_doc = result.index.get("Model", dep.spec.model.name)
        model = model_doc.model if model_doc else None
        model_file = result.models.artifacts.get(dep.spec.model.name)  # the tree's, DVC's cached or MLflow's
        if model is None or model_file is None:
            build_result.blocked.append((dep.metadata.name, "the model has no local artifact to bundle"))
            continue
        gate_docs = [(g, result.index.get("TestSuite", g)) for g in dep.spec.gates]
        suites = tuple(d.model for _, d in gate_docs if d is not None and d.model is not None)
        if len(suites) != len(gate_docs):  # validation reports it (TAKT3001); a library caller gets a reason
            missing = next(g for g, d in gate_docs if d is None or d.model is None)
            build_result.blocked.append((dep.metadata.name, f"gate {missing} is not a valid TestSuite"))
            continue
        try:  # validation refused paths that leave the project; this read is checked again all the same
            model_path = model_file
            sample_digests = {
                t.samples: sha_of(inside(t.samples)) for s in suites for t in s.spec.tests if isinstance(t, GoldenTest)
            }
            dataset_digests = {  # a bundle's reference bins come from these bytes, pinned or not
                f"{s.metadata.name}/{n}": sha_of(inside(ds.path, dataset=True))
                for s in suites
                for n, ds in s.spec.datasets.items()
            }
            bound = {b.source for b in dep.spec.bindings}
            recordings = {  # a file DataSource's recording travels in edge bundles: its bytes key the render
                name: cache.sha256(inside(src.spec.path))
                for name, src in sources.items()
                if name in bound and isinstance(src.spec, FileSource)
            }
        except (TreeError, OSError, Refused) as exc:
            build_result.blocked.append((dep.metadata.name, f"cannot read an input file: {exc}"))
            continue
        selected = select_devices(result.index, dep)
        steps = rollout_spec(dep, {d.model.device_id: d.model.metadata.labels for d in selected})
        if steps is not None:
            build_result.rollouts[dep.metadata.name] = steps.to_json()
        dep_digest = hashlib.sha256(canonical_json(_dump(dep))).hexdigest()
        for i, target_name in enumerate(dep.spec.targets):
            if target_name in blocked_on:
                continue
            target = result.index.resolved_targets[target_name]
            tc = classes.get(target.class_ or "")
            if tc is None:  # validation reports it (TAKT4034); a library caller that skipped it gets a reason
                build_result.blocked.append((dep.metadata.name, f"target class {target.class_!r} is not installed"))
                continue
            devices = tuple(sorted(d.model.device_id for d in selected if d.model.spec.target == target_name))
            try:
                profile = tc.profile(target.profile)
            except ProfileError as exc:  # validation reports it (TAKT4035); a caller that skipped it gets a reason
                build_result.blocked.append((dep.metadata.name, f"target {target_name!r}: {exc}"))
                continue
            inp = RenderInput(
                deployment=dep,
                model=model,
                model_path=model_path,
                model_sha256=sha_of(model_path),
                target_name=target_name,
                target=target,
                profile=profile,
                sources=sources,
                gates=suites,
                root=result.root,
                devices=devices,
                deployment_index=dep_index,
                provenance={
                    "compiler": __version__,
                    "target": target_name,
                    "targetClass": tc.name,
                    "arch": target.arch,
                    "deployment": dep.metadata.name,
                    "model": {
                        "name": model.metadata.name,
                        "version": model.spec.version,
                        "sha256": sha_of(model_path),
                    },
                    "datasets": {n: ds.sha256 for s in suites for n, ds in s.spec.datasets.items() if ds.sha256},
                    **_lineage(model, suites, result.models.lineage),
                    "specDigests": {"deployment": dep_digest, "model": digest_of(model), "target": digest_of(target)},
                },
            )
            key = hashlib.sha256(
                canonical_json(
                    {
                        "compiler": __version__,
                        "class": tc.name,
                        "fingerprint": fingerprints[tc.name],
                        "code": _render_code(),
                        "deployment": dep_digest,  # specs by the digests of their canonical dumps
                        "model": digest_of(model),
                        "modelSha": inp.model_sha256,
                        "target": digest_of(target),
                        "profile": inp.profile.model_dump(mode="json"),
                        "sources": sources_digest,
                        "gates": [digest_of(s) for s in suites],
                        "samples": sample_digests,
                        "datasets": dataset_digests,
                        "recordings": recordings,
                        "provenance": inp.provenance,
                        "deploymentIndex": dep_index,
                    }
                )
            ).hexdigest()
            jobs_in.append((key, inp, tc, (doc, i)))

    outcomes: list[BuiltBundle | Diagnostic | None] = [None] * len(jobs_in)
    notes: list[Diagnostic] = []  # warnings of target classes
    stamps: dict[int, str] = {}  # job → tree stamp of its bundle as written or verified
    cached = [(n, previous.entry(key)) for n, (key, *_) in enumerate(jobs_in)]
    cached = [(n, entry) for n, entry in cached if entry]
    unverified = []
    for n, entry in cached:  # a tree whose stamp is unchanged is as it was verified: no byte is read
        if entry.stamp and tree_stamp(bundles_dir / entry.digest) == entry.stamp:
            stamps[n] = entry.stamp
        else:
            unverified.append((n, entry))
    work = len(unverified) + len(jobs_in) - len(cached)
    with worker_map(min(jobs, work), work >= MIN_PARALLEL_WORK) as pmap:
        checked = pmap(verified_stamp, [(bundles_dir / e.digest, e.digest) for _, e in unverified])
        for (n, _), stamp in zip(unverified, checked, strict=True):
            if stamp is not None:
                stamps[n] = stamp
        for n, entry in cached:
            if n in stamps:
                inp = jobs_in[n][1]
                outcomes[n] = BuiltBundle(
                    inp.deployment.metadata.name, inp.target_name, inp.bundle_name, entry.digest, inp.devices, True
                )
        to_render = [n for n, outcome in enumerate(outcomes) if outcome is None]
        known, references = _known_references(  # a flashed class runs no runner: its bundles have none
            [inp if tc.plugin.activation is not Activation.FLASH else None for _, inp, tc, _ in jobs_in],
            set(to_render),
            previous,
            lambda rel: sha_of(inside(rel, dataset=True)),
        )
        tasks = [(jobs_in[n][2].name, known.get(n, jobs_in[n][1]), bundles_dir) for n in to_render]
        # the first bundle of each class renders here, before any worker is forked: the workers then
        # inherit its renderer, jinja2 and the compiled templates instead of each importing them again
        first = {task[0]: k for k, task in reversed(list(enumerate(tasks)))}
        warm = {k: render_one(tasks[k]) for k in sorted(first.values())} if len(tasks) >= MIN_PARALLEL_WORK else {}
        rest = [k for k in range(len(tasks)) if k not in warm]
        rendered_rest = dict(zip(rest, pmap(render_one, [tasks[k] for k in rest]), strict=True))
        rendered_all = [warm[k] if k in warm else rendered_rest[k] for k in range(len(tasks))]
    for n, rendered in zip(to_render, rendered_all, strict=True):
        _key, inp, _tc, (doc, i) = jobs_in[n]
        if progress:
            progress(inp.bundle_name)
        notes += [
            doc.diag("TAKT6003", f"{inp.bundle_name}: {text}", ("spec", "targets", i)) for text in rendered.warnings
        ]
        if rendered.error is not None:
            message, where = rendered.error
            tdoc = result.index.get("Target", inp.target_name)
            path = ("spec", "profile") if where == "profile" else ("spec",)
            outcomes[n] = (tdoc or doc).diag("TAKT6002", f"cannot render {inp.bundle_name}: {message}", path)
        else:
            stamps[n] = rendered.stamp
            outcomes[n] = BuiltBundle(
                inp.deployment.metadata.name, inp.target_name, inp.bundle_name, rendered.digest, inp.devices, False
            )
    keys = {}
    for n, ((key, *_), outcome) in enumerate(zip(jobs_in, outcomes, strict=True)):
        if isinstance(outcome, Diagnostic):
            build_result.diagnostics.append(outcome)
        elif outcome is not None:
            build_result.bundles.append(outcome)
            keys[key] = CacheEntry(outcome.digest, stamps.get(n, ""))
    build_result.diagnostics += notes
    _store_models(out, [(inp, tc) for _, inp, tc, _ in jobs_in], cache)
    cache.save()
    _write_index(out, build_result, provenance)
    previous.save(keys, references)
    return build_result


def _known_references(
    inputs: list[RenderInput | None], rendered: set[int], previous: BuildCache, dataset_sha: Callable[[str], str]
) -> tuple[dict[int, RenderInput], dict[str, str]]:
    """The inputs to render (by job number) with their drift reference statistics filled in, and the
    statistics this build's jobs use, by key, for the build cache (None: a job whose bundle has none).

    Many bundles share one reference dataset, and the statistics depend only on its bytes and the request
    (`ReferenceRequest`), keyed here with the render code: kept from an earlier build they are decoded, else
    computed once here, before any worker forks. An input whose statistics cannot be computed is left to its
    renderer, which refuses it with the reason (TAKT6002)."""
    from compiler.render.reference import ReferenceRequest, compute_reference, reference_request

    keys: dict[tuple[ReferenceRequest, str], str] = {}
    values: dict[str, KnownReference] = {}
    kept: dict[str, str] = {}
    failed: set[str] = set()
    known: dict[int, RenderInput] = {}
    for n, inp in enumerate(inputs):
        if inp is None:
            continue
        try:
            request = reference_request(inp)
            if request is None:
                if n in rendered:
                    known[n] = dataclasses.replace(inp, reference=KnownReference(None))
                continue
            sha = dataset_sha(request.rel)
        except (RenderError, TreeError, OSError, Refused):
            continue
        if (request, sha) not in keys:
            keys[request, sha] = hashlib.sha256(
                canonical_json(
                    {
                        "code": _render_code(),
                        "dataset": sha,
                        "format": request.fmt,
                        "suite": request.suite,
                        "name": request.name,
                        "bins": request.bins,
                        "inputs": request.inputs,
                        "memory": DEFAULT_MEMORY,
                    }
                )
            ).hexdigest()
        key = keys[request, sha]
        if key in failed:
            continue
        if key not in kept and key in previous.references:
            kept[key] = previous.references[key]  # still asked for: kept for the next build
        if n not in rendered:
            continue
        if key not in values:
            try:
                values[key] = KnownReference(contract.decode(contract.Reference | None, json.loads(kept[key])))
            except (KeyError, ValueError, RecursionError):  # not kept, or kept but undecodable (ContractError)
                try:
                    value = compute_reference(request)
                except RenderError:
                    failed.add(key)  # the renderer refuses the input with the reason
                    kept.pop(key, None)
                    continue
                if value is None or value.sha256 == sha:  # else the file changed since it was keyed: not kept
                    kept[key] = contract.dump_json(contract.encode(value))
                values[key] = KnownReference(value)
        known[n] = dataclasses.replace(inp, reference=values[key])
    return known, kept


MODELS = "models"  # out/models/<sha256>: models that bundles name by digest only, for publish to push


def _store_models(out: Path, jobs: list[tuple[RenderInput, TargetClass]], cache: DigestCache) -> None:
    """Copy the models of by-reference classes (it-server) into the content-addressed model store."""
    wanted = {inp.model_sha256: inp.model_path for inp, tc in jobs if tc.plugin.model_by_reference}
    store = out / MODELS
    for sha, src in sorted(wanted.items()):
        dst = store / sha
        if dst.is_file() and not dst.is_symlink() and cache.sha256(dst) == sha:
            continue
        data = read_regular(src, PROTOBUF_LIMIT)
        if hashlib.sha256(data).hexdigest() != sha:
            raise BuildError(f"{src} changed while the build ran; build again")
        write_atomic(dst, data)
    for stale in store.iterdir() if store.is_dir() else []:
        if stale.name not in wanted:
            stale.unlink()


@dataclass(frozen=True)
class Rendered:
    """What a render worker sends back: the bundle digest, or the renderer's refusal."""

    digest: str = ""
    error: tuple[str, str | None] | None = None  # (message, where)
    warnings: tuple[str, ...] = ()
    stamp: str = ""  # tree_stamp of the bundle just written ("": none)


def render_one(task: tuple[str, RenderInput, Path]) -> Rendered:
    """Render one bundle and write it (in a worker process: rendering is pure Python, so threads
    would take turns under the GIL)."""
    class_name, inp, bundles_dir = task
    tc = target_classes()[class_name]
    try:
        files = tc.plugin.render(inp, _templates(class_name, tc.folder))
        warnings = tuple(tc.plugin.warnings(inp))
    except RenderError as exc:
        return Rendered(error=(exc.message, exc.where))
    manifest = write_bundle(
        bundles_dir, inp.bundle_name, tc.name, files, inp.provenance, tc.plugin.executable, tc.plugin.activation
    )
    stamp = tree_stamp(bundles_dir / manifest.digest) or ""  # taken as written: the next build reads no byte
    return Rendered(digest=manifest.digest, warnings=warnings, stamp=stamp)


@functools.cache
def _templates(class_name: str, folder: Path) -> Any:
    """One sandboxed environment per class folder and process, so each template is compiled once."""
    return target_classes()[class_name].templates()


def verified_stamp(task: tuple[Path, str]) -> str | None:
    """A cached bundle is reused only when its directory verifies against the digest: None when it
    does not; else the tree's stamp, taken before and after reading ("" when they differ)."""
    directory, digest = task
    before = tree_stamp(directory)
    if verify_bundle(directory, digest)[1]:
        return None
    return before if before is not None and tree_stamp(directory) == before else ""


# Bundles (rendered or verified) below which one process is faster: forking workers of a process that
# holds the validated repo costs ~0.1 s, a bundle ~5 ms.
MIN_PARALLEL_WORK = 32


def _write_index(out: Path, res: BuildResult, provenance: dict[str, Any]) -> None:
    """index.json (what publish reads); bundles nothing refers to are pruned."""
    devices: dict[str, list[dict[str, str]]] = {}
    for b in res.bundles:
        for dev in b.devices:
            devices.setdefault(dev, []).append({"name": b.name, "digest": b.digest})
    index = {
        "version": 1,
        "compiler": __version__,
        "sourceCommit": provenance.get("sourceCommit"),
        "bundles": [
            {
                "deployment": b.deployment,
                "target": b.target,
                "name": b.name,
                "digest": b.digest,
                "devices": list(b.devices),
            }
            for b in sorted(res.bundles, key=lambda b: b.name)
        ],
        "devices": {k: sorted(v, key=lambda e: e["name"]) for k, v in sorted(devices.items())},
        "rollouts": dict(sorted(res.rollouts.items())),
    }
    write_atomic(out / "index.json", canonical_json(index))
    live = {b.digest for b in res.bundles}
    for d in (out / "bundles").glob("*") if (out / "bundles").is_dir() else []:
        if d.is_symlink():
            d.unlink()  # never ours: a link is removed, never followed
        elif d.is_dir() and d.name not in live:
            shutil.rmtree(d, ignore_errors=True)
