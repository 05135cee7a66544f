"""The health gate, run as `python -m agent.health RELEASE_DIR` in a subprocess.

Only this subprocess loads onnxruntime, so the agent's own process stays small. For each bundle
with a model: load it, replay the health samples within the bundle's tolerance, and check the
latency budget. Prints one JSON line; exit 0 healthy, 1 unhealthy.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.status import read_state_json
from compiler.bundle import runner as runner_contract
from compiler.bundle.tree import read_regular


def check_release(release: Path) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort

    checks: list[dict[str, Any]] = []
    meta = read_state_json(release / "release.json")
    for b in meta["bundles"]:
        bundle = release / "bundles" / b["digest"]
        model = next((bundle / m for m in ("model/model.onnx", "model/model.ort") if (bundle / m).is_file()), None)
        if model is None:
            checks.append({"bundle": b["name"], "ok": True, "detail": "no model to load (not an edge bundle)"})
            continue
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        config_file = bundle / runner_contract.RUNNER_JSON
        config = (  # through the one reader of trees: a verified release, read as one all the same
            runner_contract.RunnerConfig.parse(read_regular(config_file, runner_contract.MAX_BYTES))
            if config_file.is_file()
            else None
        )
        health = config.health if config is not None and config.health else runner_contract.Health()
        samples = health.samples
        if samples is None:
            checks.append({"bundle": b["name"], "ok": True, "detail": "model loads; no health samples"})
            continue
        with np.load(bundle / samples.file, allow_pickle=False) as npz:
            inputs = {i.name: npz[i.name] for i in session.get_inputs()}
            expected = {k.removeprefix("expected/"): npz[k] for k in npz.files if k.startswith("expected/")}
        names = [o.name for o in session.get_outputs()]
        session.run(None, inputs)  # warm-up
        t0 = time.perf_counter()
        outputs = dict(zip(names, session.run(None, inputs), strict=True))
        elapsed = time.perf_counter() - t0
        bad = [
            n for n, want in expected.items() if not np.allclose(outputs[n], want, rtol=samples.rel, atol=samples.abs)
        ]
        budget = health.latency_seconds
        rows = len(next(iter(inputs.values())))
        per_sample = elapsed / max(rows, 1)  # an empty samples file: the one run is the sample
        slow = budget is not None and per_sample > budget
        detail = f"{rows} samples in {elapsed * 1e3:.2f} ms"
        if bad:
            detail = f"outputs {', '.join(bad)} differ from the health samples"
        elif slow and budget is not None:
            detail = f"{per_sample * 1e3:.2f} ms per sample exceeds the budget of {budget * 1e3:.2f} ms"
        checks.append({"bundle": b["name"], "ok": not bad and not slow, "detail": detail})
    return {"ok": all(c["ok"] for c in checks), "checks": checks}


def run_health(
    release: Path,
    python: str | None,
    timeout: float,
    preempt: Callable[[], bool] | None = None,
    poll: float = 0.1,
    preempt_every: float = 2.0,
) -> tuple[bool, str]:
    """Run the gate in a subprocess, killed once more than `timeout` seconds have passed; `preempt()` (a look
    at the remote) is asked every `preempt_every` seconds, and True abandons the check. Both are looked at
    every `poll` seconds."""
    proc = subprocess.Popen(
        [python or sys.executable, "-m", "agent.health", str(release)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a kill reaches whatever the check started too
    )
    started = last_check = time.monotonic()
    try:
        while True:
            # reading both pipes while waiting: a check that prints more than a pipe holds would block on it,
            # never exit and be reported as timed out; back as soon as the check exits, not a poll later
            with contextlib.suppress(subprocess.TimeoutExpired):
                out, err = proc.communicate(timeout=poll)
                break
            now = time.monotonic()
            if now - started > timeout:
                _kill(proc)
                return False, f"health check timed out after {timeout:.0f} s"
            if preempt is not None and now - last_check >= preempt_every:
                last_check = now
                if preempt():
                    _kill(proc)
                    return False, "preempted by a newer desired state"
    except BaseException:  # the agent is stopped (SIGTERM, Ctrl-C) or preempt() failed: the check dies with the wait
        _kill(proc)
        raise
    try:
        report = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return False, f"health check crashed: {tail[:300]}"
    failing = [f"{c['bundle']}: {c['detail']}" for c in report["checks"] if not c["ok"]]
    return report["ok"], "; ".join(failing) or "; ".join(f"{c['bundle']}: {c['detail']}" for c in report["checks"])


def _kill(proc: subprocess.Popen[str]) -> None:
    """Kill the check and every process of its group: a child left alive (a shell's `sleep`, a worker) would
    hold the output pipes open, and the agent would wait for it. A process that left the group and holds
    them still is waited for two seconds, then its pipes are dropped."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=2)
    proc.wait()


def main() -> None:
    try:
        report = check_release(Path(sys.argv[1]))
    except Exception as exc:  # noqa: BLE001 - any failure to load or run is "unhealthy", with the reason
        report = {"ok": False, "checks": [{"bundle": "?", "ok": False, "detail": f"{type(exc).__name__}: {exc}"}]}
    print(json.dumps(report))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
