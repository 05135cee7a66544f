"""takt keygen and publish: the deploy branch moves by one signed commit or not at all."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compiler.build import build
from compiler.bundle import DESIRED, SIGNATURE, DesiredState, load_public_key, verify_bundle, verify_signature
from compiler.publish import PublishError, publish
from compiler.signing import KeyError_, keygen, load_private_key
from compiler.validate.pipeline import validate
from tests.conftest import copy_example, immediate_rollout


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def setup(tmp_path: Path):
    spec = tmp_path / "spec"
    immediate_rollout(copy_example("press-line-anomaly", spec))
    remote = tmp_path / "deploy.git"
    _git("init", "-q", "--bare", str(remote))
    private, public, _ = keygen(tmp_path / "keys")
    out = tmp_path / "out"
    build(validate(spec), out, run_gates=False)  # publish is the subject here; gates are tested in test_build
    return spec, remote, private, public, out


def _tree(remote: Path, branch: str = "deploy") -> list[str]:
    return _git("--git-dir", str(remote), "ls-tree", "-r", "--name-only", branch).split()


def _show(remote: Path, path: str) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", str(remote), "show", f"deploy:{path}"], check=True, capture_output=True
    ).stdout


def test_publish_writes_the_content_addressed_tree_and_signs_it(setup):
    _spec, remote, private, public, out = setup
    with pytest.raises(PublishError, match="does not exist"):
        publish(out, str(remote), "deploy", str(private))
    res = publish(out, str(remote), "deploy", str(private), create_branch=True)
    assert res.commit and sorted(res.changed) == ["ipc-press-1", "ipc-press-2", "ipc-press-3"]
    files = _tree(remote)
    assert {f.split("/")[0] for f in files} == {"bundles", "devices"}
    state = DesiredState.parse(_show(remote, f"devices/ipc-press-1/{DESIRED}"))
    assert state.generation == 1 and len(state.bundles) == 1
    trusted = [load_public_key(public.read_bytes())]
    assert verify_signature(
        _show(remote, f"devices/ipc-press-1/{DESIRED}"), _show(remote, f"devices/ipc-press-1/{SIGNATURE}"), trusted
    )
    checkout = Path(str(remote) + "-co")
    _git("clone", "-q", "--branch", "deploy", str(remote), str(checkout))
    digest = state.bundles[0].digest
    assert verify_bundle(checkout / "bundles" / digest, digest)[1] == []
    assert not any("PRIVATE KEY" in (checkout / f).read_text(errors="ignore") for f in files)


def test_same_build_twice_makes_no_commit_and_changes_bump_generations(setup, tmp_path: Path):
    spec, remote, private, _, out = setup
    first = publish(out, str(remote), "deploy", str(private), create_branch=True)
    assert publish(out, str(remote), "deploy", str(private)).commit is None
    log = _git("--git-dir", str(remote), "log", "--oneline", "deploy").splitlines()
    assert len(log) == 1
    targets = spec / "specs/targets.yaml"
    targets.write_text(targets.read_text().replace("memory: 4Gi", "memory: 6Gi"))  # only ipc-arm changes
    build(validate(spec), out, run_gates=False)  # publish is the subject here; gates are tested in test_build
    second = publish(out, str(remote), "deploy", str(private))
    assert second.commit and second.changed == ["ipc-press-3"]
    assert len(second.removed_bundles) == 1 and len(second.added_bundles) == 1
    assert DesiredState.parse(_show(remote, f"devices/ipc-press-3/{DESIRED}")).generation == 2
    assert DesiredState.parse(_show(remote, f"devices/ipc-press-1/{DESIRED}")).generation == 1
    assert first.commit != second.commit


def test_expiring_states_are_refreshed(setup):
    _spec, remote, private, _, out = setup
    now = datetime(2026, 1, 1, tzinfo=UTC)
    publish(out, str(remote), "deploy", str(private), create_branch=True, now=now, validity=timedelta(days=2))
    later = publish(
        out, str(remote), "deploy", str(private), now=now + timedelta(days=1, hours=1), validity=timedelta(days=2)
    )
    assert later.commit and len(later.changed) == 3
    state = DesiredState.parse(_show(remote, f"devices/ipc-press-1/{DESIRED}"))
    assert state.generation == 2 and state.expires == now + timedelta(days=3, hours=1)


def test_a_device_leaving_the_fleet_gets_an_empty_signed_state(setup):
    spec, remote, private, _, out = setup
    publish(out, str(remote), "deploy", str(private), create_branch=True)
    devices = spec / "specs/devices.yaml"
    devices.write_text(
        devices.read_text().split("---\napiVersion: takt/v1\nkind: Device\nmetadata:\n  name: ipc-press-3")[0]
    )
    build(validate(spec), out, run_gates=False)  # publish is the subject here; gates are tested in test_build
    res = publish(out, str(remote), "deploy", str(private))
    assert res.changed == ["ipc-press-3"] and res.removed_bundles
    state = DesiredState.parse(_show(remote, f"devices/ipc-press-3/{DESIRED}"))
    assert state.bundles == () and state.generation == 2


def test_unreachable_repo_and_bad_keys(setup, tmp_path: Path):
    _, _, private, _, out = setup
    with pytest.raises(PublishError, match="unreachable"):
        publish(out, str(tmp_path / "nope.git"), "deploy", str(private))
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyError_) as err:
        load_private_key(str(bad))
    assert "not a key" not in str(err.value)
    with pytest.raises(KeyError_, match="not set"):
        load_private_key("env:TAKT_NO_SUCH_VARIABLE")


def test_a_refused_push_publishes_nothing(setup):
    spec, remote, private, _, out = setup
    publish(out, str(remote), "deploy", str(private), create_branch=True)
    before = _git("--git-dir", str(remote), "rev-parse", "deploy")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'branch deploy is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    targets = spec / "specs/targets.yaml"
    targets.write_text(targets.read_text().replace("memory: 4Gi", "memory: 6Gi"))
    build(validate(spec), out, run_gates=False)  # publish is the subject here; gates are tested in test_build
    with pytest.raises(PublishError, match="protected"):
        publish(out, str(remote), "deploy", str(private))
    assert _git("--git-dir", str(remote), "rev-parse", "deploy") == before


def test_keygen_refuses_to_overwrite_and_keeps_the_key_private(tmp_path: Path):
    private, _public, kid = keygen(tmp_path)
    assert oct(private.stat().st_mode & 0o777) == "0o600" and len(kid) == 16
    with pytest.raises(KeyError_, match="exists"):
        keygen(tmp_path)


def test_publish_cli_uses_project_defaults(setup, cli_run, tmp_path: Path):
    spec, remote, private, _, _ = setup
    code, out = cli_run("publish", str(spec), "--deploy-repo", str(remote), "--key", str(private), "--create-branch")
    assert code == 0, out
    assert "published" in out
    code, out = cli_run("publish", str(spec), "--deploy-repo", str(remote), "--key", str(private))
    assert code == 0 and "up to date" in out
    code, out = cli_run("publish", str(spec), "--deploy-repo", str(remote), "--key", str(tmp_path / "missing.key"))
    assert code == 2 and "cannot read signing key" in out


def test_a_disk_that_fills_mid_write_publishes_nothing(setup, monkeypatch: pytest.MonkeyPatch):
    import git

    import compiler.publish as pub

    _, remote, private, _, out = setup
    publish(out, str(remote), "deploy", str(private), create_branch=True)
    before = _git("--git-dir", str(remote), "rev-parse", "deploy")
    real = pub._plumb

    def full(repo, args, *rest, **kw):
        if args[0] == "hash-object":  # what git prints when the object store cannot grow
            raise git.GitCommandError(["git", *args], 128, b"error: unable to write file: No space left on device")
        return real(repo, args, *rest, **kw)

    monkeypatch.setattr(pub, "_plumb", full)
    spec = out.parent / "spec"
    targets = spec / "specs/targets.yaml"
    targets.write_text(targets.read_text().replace("memory: 4Gi", "memory: 6Gi"))
    build(validate(spec), out, run_gates=False)  # publish is the subject here; gates are tested in test_build
    with pytest.raises(PublishError, match=r"No space left on device.*nothing was published"):
        publish(out, str(remote), "deploy", str(private))
    assert _git("--git-dir", str(remote), "rev-parse", "deploy") == before


def test_a_relative_deploy_repo_on_the_command_line_is_relative_to_the_working_directory(setup, cli_run):
    spec, remote, private, _, _ = setup
    code, out = cli_run(
        "publish",
        "spec",
        "--deploy-repo",
        f"./{remote.name}",
        "--key",
        str(private),
        "--create-branch",
        cwd=remote.parent,
    )
    assert code == 0, out
    assert _tree(remote), "published into the deploy repo beside the working directory"
    assert not (spec / remote.name).exists()


def test_threat_an_oversized_key_file_is_refused_before_parsing(tmp_path: Path):
    from agent.devicekey import DeviceKeyError, load_device_key
    from compiler.signing import KeyError_, load_private_key

    big = tmp_path / "big.key"
    big.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + b"A" * 10_000)
    big.chmod(0o600)
    with pytest.raises(KeyError_, match="larger than 4096 bytes"):
        load_private_key(str(big))
    with pytest.raises(DeviceKeyError, match="larger than 4096 bytes"):
        load_device_key(big)
    ecdsa = tmp_path / "not-ed25519.key"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ecdsa.write_bytes(pem)
    ecdsa.chmod(0o600)
    with pytest.raises(KeyError_, match="not an ed25519 key"):
        load_private_key(str(ecdsa))
    with pytest.raises(DeviceKeyError, match="not an ed25519 key"):
        load_device_key(ecdsa)
