"""A deploy world for agent tests: a spec repo, its build, keys, a bare deploy repo (optionally
served by a real `git daemon` on 127.0.0.1), and helpers to publish honest or hostile states."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.config import AgentConfig
from compiler.build import build
from compiler.bundle import DesiredState, sign
from compiler.publish import publish
from compiler.signing import keygen, load_private_key
from compiler.validate.pipeline import validate
from tests.conftest import EXAMPLES

FAST_HEALTH = '#!/bin/sh\necho \'{"ok": true, "checks": [{"bundle": "*", "ok": true, "detail": "stub"}]}\'\n'


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@dataclass
class World:
    root: Path
    spec: Path
    out: Path
    remote: Path
    private: Path
    public: Path
    url: str

    def republish(self, edit: tuple[str, str, str] | None = None, **kw) -> None:
        """Change a spec file (path, old, new), build without gates, publish."""
        if edit:
            path = self.spec / edit[0]
            text = path.read_text()
            assert edit[1] in text, edit[1]
            path.write_text(text.replace(edit[1], edit[2]))
        build(validate(self.spec), self.out, run_gates=kw.pop("run_gates", False))
        publish(self.out, str(self.remote), "deploy", str(self.private), **kw)

    def checkout(self) -> Path:
        work = self.root / "hostile"
        shutil.rmtree(work, ignore_errors=True)
        git("clone", "-q", "--branch", "deploy", str(self.remote), str(work))
        return work

    def push(self, work: Path, message: str = "hostile") -> None:
        git("add", "-A", cwd=work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=work)
        git("push", "-q", "origin", "HEAD:deploy", cwd=work)

    def signed_state(self, work: Path, device: str, state: DesiredState, key_path: Path | None = None) -> None:
        ddir = work / "devices" / device
        data = state.to_bytes()
        (ddir / "desired.json").write_bytes(data)
        (ddir / "desired.json.sig").write_bytes(sign(data, load_private_key(str(key_path or self.private))))

    def config(self, state: Path, **kw) -> AgentConfig:
        fast = self.root / "fast-health"
        if not fast.exists():
            fast.write_text(FAST_HEALTH)
            fast.chmod(0o755)
        if kw.pop("fast", False):
            kw["python"] = str(fast)
        return AgentConfig(
            repo=kw.pop("repo", self.url),
            branch="deploy",
            device=kw.pop("device", "ipc-press-1"),
            state_dir=state,
            trusted_keys=(self.public,),
            reserve_bytes=kw.pop("reserve_bytes", 0),
            health_timeout=kw.pop("health_timeout", 60),
            **kw,
        )


def make_world(root: Path, url: str | None = None) -> World:
    spec = root / "spec"
    shutil.copytree(EXAMPLES / "press-line-anomaly", spec, ignore=shutil.ignore_patterns(".takt-cache"))
    remote = root / "srv" / "deploy.git"
    remote.parent.mkdir(parents=True)
    git("init", "-q", "--bare", str(remote))
    git("config", "uploadpack.allowFilter", "true", cwd=remote)
    private, public, _ = keygen(root / "keys")
    out = root / "out"
    build(validate(spec), out, run_gates=False)
    publish(out, str(remote), "deploy", str(private), create_branch=True)
    return World(root, spec, out, remote, private, public, url or str(remote))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GitDaemon:
    """`git daemon` on 127.0.0.1, serving one directory; stopped by the test that started it."""

    def __init__(self, base: Path) -> None:
        self.base, self.port = base, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"git://127.0.0.1:{self.port}/deploy.git"

    def start(self) -> GitDaemon:
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--informative-errors",
                f"--base-path={self.base}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def in_days(days: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
