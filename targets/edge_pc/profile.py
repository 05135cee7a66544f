"""The edge-pc profile: where the agent installs releases, how the runner's unit runs, its port."""

from __future__ import annotations

from pydantic import StrictFloat, StrictInt

from compiler.render.profile import TargetProfile


class Unit(TargetProfile):
    user: str = "takt"
    """The user the runner's systemd unit runs as."""
    nice: StrictInt = 0
    """-20..19."""


class Health(TargetProfile):
    timeout_seconds: StrictInt | StrictFloat = 30
    """How long the agent waits for a new release to become healthy, in (0, 3600]."""


class EdgePcProfile(TargetProfile):
    install_dir: str = "/var/lib/takt/current"
    """Where the agent keeps the active release (an absolute path of plain segments)."""
    runner_command: str = "takt-runner"
    image: str = "ghcr.io/takt-dev/runner:0.1"
    """The runner image of compose.yaml."""
    unit: Unit = Unit()
    health: Health = Health()
    http_port: StrictInt = 8080
    """The runner's HTTP port (health, KServe V2, metrics); each deployment on one device gets its own
    from it (httpPort + the deployment's index)."""
