"""Test kit for takt-runner: a bundle directory (model + runner.json) built through the contract,
the runner as a real subprocess on a free port, and small HTTP helpers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compiler.bundle import runner as contract
from tests.conftest import tiny_model

MODEL = tiny_model(2)  # y = 0.5·x0 + 0.5·x1, x: [batch, 2] → y: [batch, 1]
MODEL_SHA = hashlib.sha256(MODEL).hexdigest()


def expected(x0: float, x1: float) -> float:
    """What onnxruntime gives for one frame (the test's own independent run of the model)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
    return float(sess.run(None, {"x": np.array([[x0, x1]], dtype=np.float32)})[0][0, 0])


def model_section(**kw: Any) -> contract.ModelSection:
    return contract.ModelSection(
        name="m",
        version="1.0.0",
        file="model/model.onnx",
        sha256=MODEL_SHA,
        inputs=(
            contract.Tensor(
                name="x",
                dtype="float32",
                shape=("batch", 2),
                features=(contract.Feature(name="a"), contract.Feature(name="b")),
            ),
        ),
        outputs=(contract.Tensor(name="y", dtype="float32", shape=("batch", 1)),),
        **kw,
    )


def write_bundle(root: Path, config: contract.RunnerConfig, model: bytes = MODEL) -> Path:
    (root / "model").mkdir(parents=True, exist_ok=True)
    (root / "model" / "model.onnx").write_bytes(model)
    path = root / contract.RUNNER_JSON
    path.write_bytes(config.to_json())
    return path


def config_for(source_name: str, source: contract.Source, outputs: tuple[contract.Output, ...] = (),
               fields: tuple[str, str] = ("a", "b"), **kw: Any) -> contract.RunnerConfig:  # fmt: skip
    return contract.RunnerConfig(
        deployment="d",
        target="t",
        model=model_section(),
        sources={source_name: source},
        bindings=(contract.Binding(input="x", source=source_name, fields=fields),),
        outputs=outputs,
        **kw,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunnerProcess:
    proc: subprocess.Popen
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, Any]:
        return request("GET", self.url(path))

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return request("POST", self.url(path), body)

    def metric(self, name: str, labels: str = "") -> float:
        _, text = request("GET", self.url("/metrics"), raw=True)
        pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else r"(\{\})?") + r" (?P<v>\S+)"
        m = re.search(r"^" + pattern + "$", text, re.M)
        return float(m.group("v")) if m else 0.0

    def wait_ready(self, want: bool = True, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, _ = self.get("/v2/health/ready")
            if (code == 200) == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"runner did not become {'ready' if want else 'unready'} in {timeout} s")

    def stop(self, timeout: float = 10.0) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError("runner did not stop on SIGTERM in time") from None
        return self.proc.returncode, err


def runner_cmd(config: Path, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "runner", "--config", str(config), "--http-port", str(port), "--http-host",
            "127.0.0.1", *extra]  # fmt: skip


def start_runner(config: Path, env: dict[str, str] | None = None, timeout: float = 60.0,
                 extra: tuple[str, ...] = ()) -> RunnerProcess:  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        runner_cmd(config, port, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    rp = RunnerProcess(proc, port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"runner exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            code, _ = rp.get("/v2/health/live")
            if code == 200:
                return rp
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("runner did not answer in time")


def run_to_exit(config: Path, env: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, str]:
    proc = subprocess.run(
        runner_cmd(config, free_port()),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return proc.returncode, proc.stderr


def request(method: str, url: str, body: Any = None, raw: bool = False) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            payload = resp.read().decode()
            code = resp.status
    except urllib.error.HTTPError as exc:
        payload, code = exc.read().decode(), exc.code
    if raw:
        return code, payload
    try:
        return code, json.loads(payload)
    except ValueError:
        return code, payload


def wait_for(predicate, timeout: float = 20.0, every: float = 0.02, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
