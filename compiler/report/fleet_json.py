"""`takt fleet status --format json`: the whole view, for scripts and dashboards."""

from __future__ import annotations

import json

from compiler.fleet.status import FleetStatus


def render_fleet_json(status: FleetStatus) -> str:
    return json.dumps(status.to_json(), indent=2, sort_keys=True) + "\n"
