"""What a failed Git command said, as the agent and publish report it (compiler/bundle/gitmessage.py):
the cause, from real git runs on 127.0.0.1, never only Git's closing advice, and never a password."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import git
import pytest

from compiler.bundle.gitmessage import MAX_CHARS, redact_url, summary

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "GIT_TERMINAL_PROMPT": "0",
       "LANG": "C"}  # fmt: skip


def _stderr(*args: str, cwd: Path | None = None) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r
    return r.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there


def test_a_missing_repository_is_named_not_the_advice(tmp_path: Path):
    text = summary(_stderr("ls-remote", str(tmp_path / "nowhere")))
    assert "does not appear to be a git repository" in text and str(tmp_path / "nowhere") in text
    assert "and the repository exists" not in text and "Please make sure" not in text


def test_a_refused_connection_keeps_its_continued_line():
    text = summary(_stderr("ls-remote", f"git://127.0.0.1:{_closed_port()}/x"))
    assert text.startswith("unable to connect to 127.0.0.1") and "Connection refused" in text, text


def test_a_refused_push_says_what_the_server_said_and_which_ref(tmp_path: Path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, env=ENV)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'deploy is a protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    work = tmp_path / "w"
    subprocess.run(["git", "init", "-q", str(work)], check=True, env=ENV)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=work, check=True, env=ENV)  # fmt: skip
    text = summary(_stderr("push", str(remote), "HEAD:deploy", cwd=work))
    assert "remote: deploy is a protected branch" in text
    assert "[remote rejected] HEAD -> deploy (pre-receive hook declined)" in text
    assert text.index("remote:") < text.index("[remote rejected]")  # Git's order


def test_gitpythons_wrapping_is_taken_off(tmp_path: Path):
    with pytest.raises(git.GitCommandError) as info:
        git.cmd.Git().ls_remote(str(tmp_path / "nowhere"))
    text = summary(info.value.stderr)
    assert text.startswith("'") and "does not appear to be a git repository" in text, text
    assert "stderr:" not in text and not text.endswith("'")


def test_progress_lines_are_not_causes():
    raw = "remote: Counting objects: 100% (3/3), done.\nremote: Enumerating objects: 3\nerror: failed to push\n"
    assert summary(raw) == "failed to push"


def test_no_cause_line_falls_back_to_the_last_line_and_nothing_to_git_failed():
    assert summary("warning: x\nsomething odd happened\n") == "something odd happened"
    assert summary("") == "git failed" and summary("\n  \n") == "git failed"


def test_a_long_message_is_cut_to_its_bound():
    text = summary("fatal: " + "x" * 1000)
    assert len(text) == MAX_CHARS == 300 and text.endswith("…")
    assert summary("fatal: " + "x" * 300) == "x" * 300 and summary("fatal: " + "x" * 301) == "x" * 299 + "…"


def test_only_a_whole_quoting_is_taken_off():
    assert summary("stderr: 'fatal: boom'") == "boom"
    assert summary("''") == "git failed" and summary("'") == "'" and summary("'x'") == "x"
    assert summary("stderr: 'fatal: it's gone") == "'fatal: it's gone"  # no closing quote: nothing taken off


def test_causes_after_a_blank_line_and_continuations_of_the_latest_cause():
    assert summary("fatal: a\n\nfatal: b\n") == "a; b"
    assert summary("fatal: a\nfatal: b\n  on the next line\n") == "a; b on the next line"
    assert summary("fatal: a\n\nnot continued\n") == "a"  # a blank line ends a cause


def test_advice_and_other_lines_never_continue_a_cause():
    assert summary("error: failed to push some refs to 'x'\nhint: Updates were rejected\nhint: pull first\n") == (
        "failed to push some refs to 'x'"
    )
    assert summary(" ! [rejected] a -> b (fetch first)\nnot a cause\n") == "! [rejected] a -> b (fetch first)"
    assert summary("remote: refused by policy\nnot a cause\n") == "remote: refused by policy"
    assert summary("fatal: a\nTo ../remote.git\ntail\n") == "a"  # a line that is no continuation ends it
    assert summary("just words\nfatal: a\n") == "a"


def test_threat_a_password_in_a_url_never_reaches_the_message():
    raw = "fatal: unable to access 'https://deploy:ghp_s3cret@git.example/x/': Could not resolve host\n"
    text = summary(raw)
    assert "ghp_s3cret" not in text and "https://deploy:***@git.example/x/" in text
    assert redact_url("ssh://a:b@h/x and https://c:d@h/y") == "ssh://a:***@h/x and https://c:***@h/y"
    assert redact_url("https://user@h/x") == "https://user@h/x"  # no password, nothing to hide


def test_threat_the_agent_never_writes_the_deploy_repos_password(tmp_path: Path):
    """The URL with its token goes in on the command line; status, journal and the printed line keep it out."""
    from click.testing import CliRunner
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.cli import agent_group

    key = tmp_path / "pub.pem"
    key.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    state = tmp_path / "state"
    url = f"https://deploy:tok3n-s3cret@127.0.0.1:{_closed_port()}/deploy.git"
    r = CliRunner().invoke(agent_group, ["run", "--device", "ipc-1", "--repo", url, "--branch", "deploy",
                                         "--trust", str(key), "--state-dir", str(state), "--once"])  # fmt: skip
    assert r.exit_code == 1, r.output
    assert "cannot reach https://deploy:***@127.0.0.1" in r.output, r.output
    written = {p.name: p.read_text(errors="replace") for p in state.rglob("*") if p.is_file()}
    assert "status.json" in written and "journal.log" in written
    leaks = [name for name, text in written.items() if "tok3n-s3cret" in text]
    assert not leaks and "tok3n-s3cret" not in r.output, leaks
