"""A deploy-repo password given in the agent's `--repo` URL (compiler/bundle/gitcred.py): it
authenticates against a real HTTPS Git server that demands it, and is never written to the state
directory (the clone's `.git/config` included) nor given to git on its command line."""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.devicekey import keygen
from agent.reconcile import Reconciler
from compiler.bundle.gitcred import git_remote
from compiler.bundle.report import load_device_public_key
from compiler.fleet.reports import read_reports
from tests.agentkit import HttpsGitServer, make_world, read_status

SECRET = "tok3n/s3cret"  # a slash, so the URL must carry it percent-encoded
QUOTED = "tok3n%2Fs3cret"
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_the_url_git_sees_has_no_password_and_the_helper_has_it():
    r = git_remote(f"https://deploy:{QUOTED}@git.example:8443/x/deploy.git?a=1")
    assert r.url == "https://deploy@git.example:8443/x/deploy.git?a=1"
    assert r.env["TAKT_GIT_USERNAME"] == "deploy" and r.env["TAKT_GIT_PASSWORD"] == SECRET
    # the helpers of every config file are reset before ours, so none of them can store it
    assert [r.env[f"GIT_CONFIG_KEY_{i}"] for i in range(2)] == ["credential.helper"] * 2
    assert r.env["GIT_CONFIG_COUNT"] == "2" and r.env["GIT_CONFIG_VALUE_0"] == ""
    assert SECRET not in r.env["GIT_CONFIG_VALUE_1"] and QUOTED not in r.env["GIT_CONFIG_VALUE_1"]
    assert git_remote("https://:tok@h/x").url == "https://h/x"  # a token without a user name
    with pytest.raises(dataclasses.FrozenInstanceError):  # handed around; nobody may swap the URL
        r.url = "https://deploy:x@elsewhere/"  # type: ignore[misc]
    assert git_remote("https://a:b:c@h/x").url == "https://a@h/x"  # ':' is allowed in a password
    assert git_remote("https://a:b:c@h/x").env["TAKT_GIT_PASSWORD"] == "b:c"
    assert git_remote("HTTP://u:p@H/x").url == "http://u@H/x"  # the host as given


@pytest.mark.parametrize(
    "url",
    [
        "https://deploy@git.example/x.git",  # no password: nothing to move
        "https://git.example/x.git",
        "ssh://git@host:2222/x.git",  # ssh sends no URL password
        "ssh://a:b@host/x.git",
        "git://127.0.0.1:9418/deploy.git",
        "/srv/deploy.git",
        "file:///srv/deploy.git",
        "https://u:p@[::1/x",  # malformed: git says what is wrong with it
    ],
)
def test_other_urls_pass_through_untouched(url: str):
    assert git_remote(url).url == url and git_remote(url).env == {}


def test_the_helper_answers_git_with_the_password(tmp_path: Path):
    """git's own `credential fill` through the configured helper, in git's environment only."""
    import subprocess

    r = git_remote(f"https://deploy:{QUOTED}@127.0.0.1/deploy.git")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0", **r.env}
    out = subprocess.run(["git", "credential", "fill"], input="protocol=https\nhost=127.0.0.1\nusername=deploy\n\n",
                         env=env, capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert f"password={SECRET}\n" in out and "username=deploy\n" in out
    # "store" and "erase" say nothing back and write nothing: the helper answers "get" only
    subprocess.run(["git", "credential", "approve"], input=out, env=env, text=True, check=True)
    assert not any(tmp_path.iterdir())


def _git_shim(bin_dir: Path, log: Path) -> str:
    """A `git` on PATH that logs its arguments, then runs the real one: what `ps` would show."""
    real = shutil.which("git")
    assert real
    bin_dir.mkdir()
    shim = bin_dir / "git"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(str(log))}\nexec {shlex.quote(real)} "$@"\n')
    shim.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def _leaks(root: Path) -> list[str]:
    return [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and (SECRET.encode() in (data := p.read_bytes()) or QUOTED.encode() in data)
    ]


def test_threat_a_password_that_authenticates_stays_off_disk_and_off_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    world = make_world(tmp_path / "w")
    server = HttpsGitServer(world.remote.parent, tmp_path / "tls", login=("deploy", SECRET)).start()
    log = tmp_path / "git-argv.log"
    monkeypatch.setenv("PATH", _git_shim(tmp_path / "bin", log))
    try:
        monkeypatch.setenv("GIT_SSL_CAINFO", str(server.ca))
        state = tmp_path / "state"
        key = load_device_public_key(keygen(state))
        base = server.url.replace("https://", "")

        world.url = f"https://deploy:wrong@{base}"  # a wrong password is refused by the server
        out = Reconciler(world.config(state, fast=True, clock=lambda: T0)).run_once()
        assert out.result == "fetch-failed" and "wrong" not in out.message, out

        world.url = f"https://deploy:{QUOTED}@{base}"
        out = Reconciler(world.config(state, fast=True, clock=lambda: T0)).run_once()
        assert out.result == "applied", out
        assert read_status(state)["report"]["git"] == "pushed"  # the report went by the same login
        assert any(authed for _, authed in server.requests)
        fleet = read_reports(str(world.remote), {"ipc-press-1": key})
        # the refused cycle's report (1) could not be pushed either; it went with the applied one's (2)
        assert [r.sequence for r in fleet.history["ipc-press-1"]] == [1, 2]
        config = (state / "repo" / ".git" / "config").read_text()
        assert f"url = https://deploy@{base}" in config, config

        # the server goes away: the fetch and the report push fail, and their messages stay clean
        server.stop()
        out = Reconciler(world.config(state, fast=True, clock=lambda: T0 + timedelta(minutes=10))).run_once()
        assert out.result == "fetch-failed", out
        assert "not pushed" in read_status(state)["report"]["git"]
    finally:
        server.stop()
    assert _leaks(state) == []
    argv = log.read_text()
    assert "ls-remote" in argv and "clone" in argv and "push" in argv  # the shim saw every kind of call
    assert SECRET not in argv and QUOTED not in argv and "wrong" not in argv
    assert all(SECRET not in path and QUOTED not in path for path, _ in server.requests)


def test_threat_an_older_clone_whose_config_holds_the_password_is_cleaned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    world = make_world(tmp_path / "w")
    server = HttpsGitServer(world.remote.parent, tmp_path / "tls", login=("deploy", SECRET)).start()
    try:
        monkeypatch.setenv("GIT_SSL_CAINFO", str(server.ca))
        state = tmp_path / "state"
        world.url = server.url.replace("https://", f"https://deploy:{QUOTED}@")
        assert Reconciler(world.config(state, fast=True)).run_once().result == "applied"
        import subprocess

        repo = state / "repo"
        # what an agent before this change left: the URL as given, in the clone's config
        subprocess.run(["git", "-C", str(repo), "config", "remote.origin.url", world.url], check=True)
        world.republish(("specs/deployment.yaml", "cpu: 500m", "cpu: 750m"))
        assert Reconciler(world.config(state, fast=True)).run_once().result == "applied"
    finally:
        server.stop()
    assert _leaks(state) == []


def test_threat_publish_and_fleet_status_keep_the_password_off_the_command_line_and_out_of_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_run
):
    """The build side's git runs (publish's clone and push, the fleet reader's listing, clone and
    fetch) authenticate the same way, and their errors name the URL without its password."""
    from compiler.build import build
    from compiler.deployrepo import PublishError
    from compiler.publish import publish
    from compiler.validate.pipeline import validate

    world = make_world(tmp_path / "w")
    server = HttpsGitServer(world.remote.parent, tmp_path / "tls", login=("ci", SECRET)).start()
    log = tmp_path / "git-argv.log"
    monkeypatch.setenv("PATH", _git_shim(tmp_path / "bin", log))
    monkeypatch.setenv("GIT_SSL_CAINFO", str(server.ca))
    url = server.url.replace("https://", f"https://ci:{QUOTED}@")
    try:
        deployment = world.spec / "specs" / "deployment.yaml"
        deployment.write_text(deployment.read_text().replace("cpu: 500m", "cpu: 750m"))
        build(validate(world.spec), world.out, run_gates=False)
        publish(world.out, url, "deploy", str(world.private))
        assert any(authed and "receive-pack" in path for path, authed in server.requests)
        out = tmp_path / "fleet.json"
        code, text = cli_run("fleet", "status", str(world.spec), "--deploy-repo", url, "--format", "json",
                             "--output", str(out))  # fmt: skip
        assert out.is_file() and '"desiredGeneration": 2' in out.read_text(), text
    finally:
        server.stop()
    with pytest.raises(PublishError) as failed:  # the server is gone
        publish(world.out, url, "deploy", str(world.private))
    assert "https://ci:***@127.0.0.1" in str(failed.value) and SECRET not in str(failed.value)
    code, text = cli_run("fleet", "status", str(world.spec), "--deploy-repo", url)
    assert code != 0 and "ci:***@" in text and SECRET not in text and QUOTED not in text, text
    argv = log.read_text()
    assert "ls-remote" in argv and "clone" in argv and "push" in argv
    assert SECRET not in argv and QUOTED not in argv
