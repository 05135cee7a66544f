"""Several deployments on one device: each runner gets its own port (profile.httpPort + the
deployment's index), the same one in runner.json (which the agent probes), the unit and the compose file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from compiler.build import build
from compiler.validate.pipeline import validate
from tests.conftest import copy_example


def _two_deployments(tmp_path: Path, http_port: int | None = None) -> Path:
    root = copy_example("press-line-anomaly", tmp_path / "spec")
    text = (root / "specs/deployment.yaml").read_text()
    (root / "specs/second.yaml").write_text(text.replace("name: press-anomaly-muc", "name: press-anomaly-aux"))
    if http_port is not None:
        targets = root / "specs/targets.yaml"
        targets.write_text(
            targets.read_text().replace(
                "unit: {user: takt, nice: -5}", f"unit: {{user: takt, nice: -5}}\n    httpPort: {http_port}"
            )
        )
    return root


def test_each_deployment_on_a_device_gets_its_own_port_everywhere_it_is_named(tmp_path: Path):
    res = build(validate(_two_deployments(tmp_path)), tmp_path / "out", run_gates=False)
    assert not res.failed, res.diagnostics
    ports: dict[str, set[int]] = {}
    for b in res.bundles:
        if b.target != "ipc-x86":
            continue
        bundle = tmp_path / "out" / "bundles" / b.digest
        health = json.loads((bundle / "runner.json").read_text())["health"]
        unit = re.search(r"--http-port (\d+)$", (bundle / "takt-runner.service").read_text(), re.M).group(1)
        compose = (bundle / "compose.yaml").read_text()
        assert f"- '{health['httpPort']}'" in compose and int(unit) == health["httpPort"]
        assert health["gate"] == {  # the Deployment's rollout gate: 30m, 1 %, p95 5 ms
            "maxErrorRate": 0.01, "maxLatencyP95Seconds": 0.005, "windowSeconds": 1800.0,
        }  # fmt: skip
        ports.setdefault(b.deployment, set()).add(health["httpPort"])
    # sorted by name: press-anomaly-aux is index 0, press-anomaly-muc index 1
    assert ports == {"press-anomaly-aux": {8080}, "press-anomaly-muc": {8081}}


def test_a_port_past_65535_is_a_render_error_naming_httpport(tmp_path: Path):
    res = build(validate(_two_deployments(tmp_path, http_port=65535)), tmp_path / "out", run_gates=False)
    assert res.failed
    messages = [d.message for d in res.diagnostics]
    assert any("profile.httpPort 65535 + deployment index 1 is past 65535" in m for m in messages), messages
