"""A deploy world for agent tests: a spec repo, its build, keys, a bare deploy repo (optionally
served by a real `git daemon` on 127.0.0.1), and helpers to publish honest or hostile states."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.config import AgentConfig
from compiler.build import build
from compiler.bundle import DesiredState, sign
from compiler.publish import publish
from compiler.signing import keygen, load_private_key
from compiler.validate.pipeline import validate
from tests.conftest import copy_example, immediate_rollout
from tests.statekit import journal_events as journal_events  # re-exported: the agent tests import them here
from tests.statekit import read_status as read_status
from tests.tlskit import localhost_cert

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

    def agent_cmd(self, device: str, state: Path, *extra: str) -> list[str]:
        """The agent's own command line (`python -m agent run …`) against this world's deploy repo."""
        return [
            sys.executable,
            "-m",
            "agent",
            "run",
            "--repo",
            self.url,
            "--branch",
            "deploy",
            "--device",
            device,
            "--state-dir",
            str(state),
            "--trust",
            str(self.public),
            *extra,
        ]

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
    immediate_rollout(copy_example("press-line-anomaly", spec))
    remote = root / "srv" / "deploy.git"
    remote.parent.mkdir(parents=True)
    git("init", "-q", "--bare", str(remote))
    git("config", "uploadpack.allowFilter", "true", cwd=remote)
    private, public, _ = keygen(root / "keys")
    out = root / "out"
    build(validate(spec), out, run_gates=False)
    publish(out, str(remote), "deploy", str(private), create_branch=True)
    return World(root, spec, out, remote, private, public, url or str(remote))


@contextlib.contextmanager
def served_world(root: Path, receive_pack: bool = False) -> Iterator[World]:
    """A world whose deploy repo a real `git daemon` serves for the duration of the block
    (`receive_pack`: devices may push, as they do their status refs)."""
    daemon = None
    try:
        world = make_world(root)
        daemon = GitDaemon(world.remote.parent, receive_pack).start()
        world.url = daemon.url
        yield world
    finally:
        if daemon:
            daemon.stop()


def condition(state: Path, kind: str) -> dict:
    return next(c for c in read_status(state)["conditions"] if c["type"] == kind)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start on port {port}")


class GitDaemon:
    """`git daemon` on 127.0.0.1, serving one directory; stopped by the test that started it."""

    def __init__(self, base: Path, receive_pack: bool = False) -> None:
        self.base, self.port, self.receive_pack = base, free_port(), receive_pack
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
                *(["--enable=receive-pack"] if self.receive_pack else []),
                f"--base-path={self.base}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, "git daemon")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def in_days(days: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


class HttpsGitServer:
    """Smart-HTTP Git over TLS on 127.0.0.1: `git http-backend` behind a tiny threaded HTTPS server,
    with a self-signed certificate the client trusts through GIT_SSL_CAINFO. With `login`
    (user, password) every request needs HTTP basic auth, and an authenticated one may push."""

    def __init__(self, base: Path, certdir: Path, login: tuple[str, str] | None = None) -> None:
        self.base, self.certdir, self.port = base, certdir, free_port()
        self.server = None
        self.login = login
        self.requests: list[tuple[str, bool]] = []  # (path with query, authenticated)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/deploy.git"

    def start(self) -> HttpsGitServer:
        import base64
        import ssl
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        base, login, seen = self.base, self.login, self.requests
        expected = "Basic " + base64.b64encode(":".join(login).encode()).decode() if login else None

        class Handler(BaseHTTPRequestHandler):
            def _cgi(self) -> None:
                authenticated = expected is not None and self.headers.get("Authorization") == expected
                seen.append((self.path, authenticated))
                if expected is not None and not authenticated:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="deploy"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {
                    "GIT_PROJECT_ROOT": str(base),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": path,
                    "REQUEST_METHOD": self.command,
                    "QUERY_STRING": query,
                    "REMOTE_ADDR": "127.0.0.1",
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "PATH": "/usr/bin:/bin",
                    **({"REMOTE_USER": login[0]} if login else {}),  # http-backend lets it push
                }
                out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.split(b"\r\n"):
                    key, _, value = line.decode().partition(":")
                    if key.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif key:
                        headers.append((key, value.strip()))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _cgi

            def log_message(self, *_args) -> None:
                pass

        cert, key = localhost_cert(self.certdir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.ca = cert
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)


class SshServer:
    """A private sshd on 127.0.0.1 with its own host key, accepting one test key; git runs over it."""

    def __init__(self, workdir: Path) -> None:
        self.dir, self.port = workdir, free_port()
        self.proc: subprocess.Popen | None = None

    def url(self, repo: Path) -> str:
        import getpass

        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}{repo}"

    @property
    def git_ssh_command(self) -> str:
        return (
            f"ssh -i {self.dir / 'client'} -p {self.port} -o BatchMode=yes -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        )

    def start(self) -> SshServer:
        import os

        self.dir.mkdir(parents=True, exist_ok=True)
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / name)], check=True)
        (self.dir / "authorized_keys").write_text((self.dir / "client.pub").read_text())
        os.chmod(self.dir / "authorized_keys", 0o600)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation directory
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.dir / 'host'}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\nPidFile {self.dir / 'sshd.pid'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        )
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, "sshd")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
