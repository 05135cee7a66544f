"""`takt publish` as a request: build into the build dir, then publish it to the deploy branch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from compiler.build import BuildError, BuildResult
from compiler.commands.errors import ExitCode, Failed, UsageError
from compiler.commands.locations import DeployOptions, resolve_deploy
from compiler.commands.validated import validated
from compiler.publish import CommitSigning, PublishError, PublishResult
from compiler.signing import KeyError_
from compiler.validate.pipeline import ValidationResult


@dataclass(frozen=True)
class PublishRequest:
    """The command line as given: relative paths here are relative to `cwd`."""

    path: Path
    cwd: Path
    deploy: DeployOptions = field(default_factory=DeployOptions)
    build_dir: Path | None = None
    validity_days: int = 7
    create_branch: bool = False
    cluster_repo_url: str | None = None
    sign_commits: bool = False
    ssh_signing_key: Path | None = None
    model_registry: str | None = None
    registry_ca: Path | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    """Where registry credentials come from (TAKT_REGISTRY_USERNAME / _PASSWORD): the CLI passes os.environ."""


class BuildBlocked(Failed):
    """The build failed (a blocked deployment, a render error): nothing was published."""

    exit_code = ExitCode.FINDINGS

    def __init__(self, validation: ValidationResult, built: BuildResult) -> None:
        super().__init__("takt publish: nothing published")
        self.validation, self.built = validation, built


@dataclass(frozen=True)
class PublishOutcome:
    branch: str
    result: PublishResult
    exit_code: ExitCode = ExitCode.OK


def run_publish(request: PublishRequest) -> PublishOutcome:
    """Validate, build, publish; every refusal is a CommandError carrying its exit code."""
    from compiler.build import build
    from compiler.oci import RegistryAccess, RegistryError, RegistryRef
    from compiler.publish import publish
    from compiler.validate.pipeline import CACHE_DIR

    cwd = request.cwd
    try:
        registry = RegistryRef.parse(request.model_registry) if request.model_registry else None
    except RegistryError as exc:
        raise UsageError(str(exc), option="--model-registry") from exc
    ca = str((cwd / request.registry_ca).resolve()) if request.registry_ca else None
    access = RegistryAccess.from_environment(request.environ, ca)
    result = validated(cwd / request.path, "publish")
    where = resolve_deploy(request.deploy, result.project, result.root, cwd, need_key=True)
    assert where.key_ref is not None  # need_key
    build_dir = (cwd / request.build_dir) if request.build_dir else result.root / CACHE_DIR / "build"
    try:
        built = build(result, build_dir)
    except BuildError as exc:
        raise UsageError(str(exc)) from exc
    if built.failed:
        raise BuildBlocked(result, built)
    ssh_key = (cwd / request.ssh_signing_key).resolve() if request.ssh_signing_key else None
    signing = CommitSigning(ssh_key) if request.sign_commits or ssh_key else None
    try:
        res = publish(
            build_dir,
            where.url,
            where.branch,
            where.key_ref,
            validity=timedelta(days=request.validity_days),
            create_branch=request.create_branch,
            cluster_url=request.cluster_repo_url,  # the clusters' view of the repo: taken as given
            commit_signing=signing,
            model_registry=registry,
            registry_access=access,
        )
    except KeyError_ as exc:
        raise UsageError(str(exc)) from exc
    except PublishError as exc:
        raise Failed(str(exc)) from exc
    return PublishOutcome(where.branch, res)
