# ruff: noqa: E501 - the templates keep their own line lengths
"""A Kapitan inventory equivalent to a generated Takt fleet: one target per bundle, three jinja2
templates of ~50 lines each (a systemd unit, the runner configuration, a compose file) that loop
over the same bindings, fields and outputs Takt's edge-pc class renders."""

from __future__ import annotations

from pathlib import Path

COMMON = """\
parameters:
  kapitan:
    compile:
      - output_path: .
        input_type: jinja2
        input_paths:
          - templates/runner.service.j2
          - templates/runner.json.j2
          - templates/compose.yaml.j2
  runner:
    install_dir: /var/lib/takt/current
    command: takt-runner
    image: ghcr.io/takt-dev/runner:0.1
    user: takt
    nice: 0
    health_timeout: 30
"""

SERVICE = """\
{% set p = inventory.parameters %}
{% set d = p.deployment %}
# Rendered for {{ d.name }}/{{ p.target_name }}; installed and activated by the agent.
[Unit]
Description=takt runner {{ d.name }} (model {{ d.model.name }} {{ d.model.version }})
After=network-online.target
Wants=network-online.target
{% for b in d.bindings %}
# input {{ b.input }} from {{ b.source }}: {{ b.fields | join(', ') }}
{% endfor %}

[Service]
Type=simple
User={{ p.runner.user }}
WorkingDirectory={{ p.runner.install_dir }}/{{ d.name }}
ExecStart=/usr/bin/env {{ p.runner.command }} --config {{ p.runner.install_dir }}/{{ d.name }}/runner.json
Restart=on-failure
RestartSec=5
Nice={{ p.runner.nice }}
{% if d.resources.memory %}
MemoryMax={{ d.resources.memory | replace('Mi', 'M') }}
{% endif %}
{% if d.resources.cpu %}
CPUQuota={{ (d.resources.cpu | replace('m', '') | int) // 10 }}%
{% endif %}
{% for o in d.outputs %}
Environment="TAKT_OUTPUT_{{ loop.index }}={{ o.type }}:{{ o.topic }}"
{% endfor %}
{% for dev in d.devices %}
# device {{ dev }}
{% endfor %}
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictNamespaces=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native
ReadWritePaths={{ p.runner.install_dir }}/{{ d.name }}/state
TimeoutStartSec={{ p.runner.health_timeout }}

[Install]
WantedBy=multi-user.target
"""

RUNNER = """\
{% set p = inventory.parameters %}
{% set d = p.deployment %}
{
  "deployment": "{{ d.name }}",
  "target": "{{ p.target_name }}",
  "model": {
    "name": "{{ d.model.name }}",
    "version": "{{ d.model.version }}",
    "path": "model/model.onnx",
    "sha256": "{{ d.model.sha256 }}"
  },
  "bindings": [
{% for b in d.bindings %}
    {
      "input": "{{ b.input }}",
      "source": "{{ b.source }}",
      "fields": [{% for f in b.fields %}"{{ f }}"{% if not loop.last %}, {% endif %}{% endfor %}]
    }{% if not loop.last %},{% endif %}

{% endfor %}
  ],
  "sources": {
{% for s in d.sources %}
    "{{ s.name }}": {
      "protocol": "{{ s.protocol }}",
      "endpoint": "{{ s.endpoint }}",
      "samplingInterval": "{{ s.sampling }}",
      "fields": [
{% for f in s.fields %}
        {"name": "{{ f.name }}", "dtype": "{{ f.dtype }}", "unit": "{{ f.unit }}", "nodeId": "{{ f.node }}"}{% if not loop.last %},{% endif %}

{% endfor %}
      ]
    }{% if not loop.last %},{% endif %}

{% endfor %}
  },
  "outputs": [
{% for o in d.outputs %}
    {"type": "{{ o.type }}", "from": "{{ o.from }}", "broker": "{{ o.broker }}", "topic": "{{ o.topic }}"}{% if not loop.last %},{% endif %}

{% endfor %}
  ],
  "resources": {"cpu": "{{ d.resources.cpu }}", "memory": "{{ d.resources.memory }}"},
  "health": {"timeoutSeconds": {{ p.runner.health_timeout }}},
  "devices": [{% for dev in d.devices %}"{{ dev }}"{% if not loop.last %}, {% endif %}{% endfor %}]
}
"""

COMPOSE = """\
{% set p = inventory.parameters %}
{% set d = p.deployment %}
# compose file for {{ d.name }} on {{ p.target_name }}
services:
  runner:
    image: {{ p.runner.image }}
    container_name: takt-{{ d.name }}
    restart: unless-stopped
    user: "{{ p.runner.user }}"
    read_only: true
    command:
      - --config
      - /bundle/runner.json
    volumes:
      - type: bind
        source: {{ p.runner.install_dir }}/{{ d.name }}
        target: /bundle
        read_only: true
      - type: volume
        source: state-{{ d.name }}
        target: /state
    environment:
      TAKT_DEPLOYMENT: "{{ d.name }}"
      TAKT_TARGET: "{{ p.target_name }}"
      TAKT_MODEL: "{{ d.model.name }}@{{ d.model.version }}"
{% for o in d.outputs %}
      TAKT_OUTPUT_{{ loop.index }}: "{{ o.type }}:{{ o.topic }}"
{% endfor %}
{% for b in d.bindings %}
      TAKT_INPUT_{{ b.input | upper }}: "{{ b.source }}:{{ b.fields | join(',') }}"
{% endfor %}
    deploy:
      resources:
        limits:
          cpus: "{{ (d.resources.cpu | replace('m', '') | int) / 1000 }}"
          memory: {{ d.resources.memory | replace('Mi', 'M') }}
    healthcheck:
      test: ["CMD", "{{ p.runner.command }}", "health", "--config", "/bundle/runner.json"]
      interval: 30s
      timeout: {{ p.runner.health_timeout }}s
      retries: 3
    labels:
      dev.takt.deployment: "{{ d.name }}"
      dev.takt.target: "{{ p.target_name }}"
{% for dev in d.devices %}
      dev.takt.device.{{ loop.index }}: "{{ dev }}"
{% endfor %}
    logging:
      driver: journald
      options:
        tag: takt-{{ d.name }}
    security_opt:
      - no-new-privileges:true
    cap_drop:
      - ALL
volumes:
  state-{{ d.name }}: {}
"""


def _target(i: int, lines: int) -> str:
    line = i % lines
    fields = "".join(
        f"            - {{name: f{j}, dtype: float32, unit: mm/s, node: 'nsu=urn:plant:{line};s=S.{j}'}}\n"
        for j in range(4)
    )
    return f"""\
classes:
  - common
parameters:
  kapitan:
    vars:
      target: t{i}
  target_name: target-{i % 10}
  deployment:
    name: deploy-{i}
    model: {{name: model-{line}, version: '1.{line}.0', sha256: '{"0" * 64}'}}
    bindings:
      - {{input: x, source: src-{line}, fields: [f0, f1, f2, f3]}}
    sources:
      - name: src-{line}
        protocol: opcua
        endpoint: opc.tcp://plc-{line}.plant.local:4840
        sampling: 100ms
        fields:
{fields}    outputs:
      - {{type: mqtt, from: score, broker: 'mqtts://broker:8883', topic: plant/l{line}/c{i}/score}}
    resources: {{cpu: 500m, memory: 256Mi}}
    devices: [ipc-{i}]
"""


def write_inventory(root: Path, targets: int, lines: int = 50) -> None:
    (root / "inventory" / "targets").mkdir(parents=True, exist_ok=True)
    (root / "inventory" / "classes").mkdir(parents=True, exist_ok=True)
    (root / "templates").mkdir(exist_ok=True)
    (root / "inventory" / "classes" / "common.yml").write_text(COMMON)
    for name, text in (("runner.service.j2", SERVICE), ("runner.json.j2", RUNNER), ("compose.yaml.j2", COMPOSE)):
        (root / "templates" / name).write_text(text)
    for i in range(targets):
        (root / "inventory" / "targets" / f"t{i}.yml").write_text(_target(i, lines))
