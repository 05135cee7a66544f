"""Render an it-server bundle: Deployment, Service, ConfigMap and kustomization, built as data.

The model reaches the pod through an init container that downloads it and checks its sha256
(URL and digest are environment variables, never spliced into the shell command), so the
bundle works on any cluster and never runs a model whose bytes differ from the spec's.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import Environment

from compiler.bundle import runner as contract
from compiler.render.context import RenderError, RenderInput, runner_config
from compiler.render.escape import to_yaml
from compiler.render.reference import reference_statistics

TARGET_CLASS = "it-server"
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
FETCH = 'wget -q -O /models/model.onnx "$MODEL_URL" && echo "$MODEL_SHA256  /models/model.onnx" | sha256sum -c -'


def _model_url(inp: RenderInput) -> str:
    art = inp.model.spec.artifact
    if art.uri and art.uri.startswith("https://"):
        return art.uri
    store = inp.profile.get("modelStore")
    if not isinstance(store, str) or not store.startswith("https://"):
        raise RenderError(
            "it-server targets need profile.modelStore (an https:// URL serving "
            "<store>/sha256/<digest>) or an https:// artifact.uri",
            "profile",
        )
    return f"{store.rstrip('/')}/sha256/{inp.model_sha256}"


def render(inp: RenderInput, templates: Environment) -> dict[str, bytes]:
    p = inp.profile
    name = inp.deployment.metadata.name
    namespace = p.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not _DNS.match(namespace)):
        raise RenderError(f"profile.namespace {namespace!r} is not a DNS label", "profile")
    replicas = p.get("replicas", 1)
    port = p.get("port", 8080)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 <= replicas <= 1000:
        raise RenderError("profile.replicas must be an integer 0..1000", "profile")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise RenderError("profile.port must be an integer 1..65535", "profile")
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/managed-by": "takt",
        "takt.dev/model": inp.model.metadata.name,
    }
    selector = {"app.kubernetes.io/name": name}
    config = runner_config(inp, "/models/model.onnx").with_(reference=reference_statistics(inp))
    res = inp.deployment.spec.resources
    resources: dict[str, Any] = {}
    if res and (res.cpu or res.memory):
        req = {
            k: v
            for k, v in (
                ("cpu", f"{round(res.cpu * 1000)}m" if res.cpu else None),
                ("memory", str(res.memory) if res.memory else None),
            )
            if v
        }
        resources = {"requests": req, "limits": dict(req)}
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels, "annotations": {"takt.dev/model-sha256": inp.model_sha256}},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
                    "initContainers": [
                        {
                            "name": "fetch-model",
                            "image": str(p.get("fetchImage")),
                            "command": ["sh", "-c", FETCH],
                            "env": [
                                {"name": "MODEL_URL", "value": _model_url(inp)},
                                {"name": "MODEL_SHA256", "value": inp.model_sha256},
                            ],
                            "volumeMounts": [{"name": "models", "mountPath": "/models"}],
                        }
                    ],
                    "containers": [
                        {
                            "name": "runner",
                            "image": str(p.get("image")),
                            "args": ["--config", f"/etc/takt/{contract.RUNNER_JSON}", "--http-port", str(port)],
                            "ports": [{"name": "http", "containerPort": port}],
                            "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "http"}},
                            "livenessProbe": probe,
                            "resources": resources,
                            "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
                            "volumeMounts": [
                                {"name": "models", "mountPath": "/models", "readOnly": True},
                                {"name": "config", "mountPath": "/etc/takt", "readOnly": True},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "models", "emptyDir": {}},
                        {"name": "config", "configMap": {"name": f"{name}-runner"}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-runner", "labels": labels},
        "data": {contract.RUNNER_JSON: config.to_json().decode("utf-8")},
    }
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["deployment.yaml", "service.yaml", "configmap.yaml"],
    }
    if namespace:
        kustomization["namespace"] = namespace
    return {
        "kustomization.yaml": to_yaml(kustomization).encode(),
        "deployment.yaml": to_yaml(deployment).encode(),
        "service.yaml": to_yaml(service).encode(),
        "configmap.yaml": to_yaml(configmap).encode(),
    }
