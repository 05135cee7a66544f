"""Render an it-server bundle: Deployment, Service, ConfigMap and kustomization, built as data.

The model reaches the pod through init containers and never through the bundle: either from an
OCI registry (`profile.modelRegistry`, where `takt publish --model-registry` pushed it), fetched
as the blob whose digest is the model's sha256, or from an https model store. Either way a
second step checks the sha256 before the runner starts (URLs and digests are environment
variables, never spliced into a shell command), so a pod never runs bytes the spec did not pin.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from compiler.bundle import runner as contract
from compiler.render.context import RenderError, RenderInput, runner_config
from compiler.render.escape import to_yaml
from compiler.render.reference import reference_statistics
from targets.it_server.profile import ItServerProfile
from targets.it_server.secrets import PodSecrets, rewrite_refs

if TYPE_CHECKING:
    from jinja2 import Environment  # the templates arrive built; validate never imports jinja2

_DNS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
FETCH = 'wget -q -O /models/model.onnx "$MODEL_URL" && echo "$MODEL_SHA256  /models/model.onnx" | sha256sum -c -'
CHECK = 'echo "$MODEL_SHA256  /models/model.onnx" | sha256sum -c -'
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?/[a-z0-9]+([._/-][a-z0-9]+)*$")


def _profile(inp: RenderInput) -> ItServerProfile:
    assert isinstance(inp.profile, ItServerProfile)  # the plugin declares it; TargetClass.profile parses it
    return inp.profile


def _model_url(inp: RenderInput) -> str:
    art = inp.model.spec.artifact
    if art.uri and art.uri.startswith("https://"):
        return art.uri
    store = _profile(inp).model_store
    if not isinstance(store, str) or not store.startswith("https://"):
        raise RenderError(
            "it-server targets need profile.modelStore (an https:// URL serving "
            "<store>/sha256/<digest>) or an https:// artifact.uri",
            "profile",
        )
    return f"{store.rstrip('/')}/sha256/{inp.model_sha256}"


def _model_init_containers(inp: RenderInput) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(init containers, extra volumes) that put the pinned model at /models/model.onnx."""
    p = _profile(inp)
    mount = {"name": "models", "mountPath": "/models"}
    digest_env = {"name": "MODEL_SHA256", "value": inp.model_sha256}
    registry = p.model_registry
    if registry is None:
        fetch = {
            "name": "fetch-model",
            "image": p.fetch_image,
            "command": ["sh", "-c", FETCH],
            "env": [{"name": "MODEL_URL", "value": _model_url(inp)}, digest_env],
            "volumeMounts": [mount],
        }
        return [fetch], []
    if not isinstance(registry, str) or not _REGISTRY.match(registry):
        raise RenderError(f"profile.modelRegistry {registry!r} must be REGISTRY/REPOSITORY", "profile")
    pull: dict[str, Any] = {
        "name": "fetch-model",
        "image": p.oras_image,
        "args": ["blob", "fetch", "--output", "/models/model.onnx", f"{registry}@sha256:{inp.model_sha256}"],
        "volumeMounts": [mount],
    }
    volumes: list[dict[str, Any]] = []
    secret = p.model_registry_secret
    if secret is not None:
        if not isinstance(secret, str) or not _DNS.match(secret):
            raise RenderError(f"profile.modelRegistrySecret {secret!r} is not a Secret name", "profile")
        pull["env"] = [{"name": "DOCKER_CONFIG", "value": "/etc/takt/registry"}]
        pull["volumeMounts"] = [mount, {"name": "registry-auth", "mountPath": "/etc/takt/registry", "readOnly": True}]
        volumes.append(
            {
                "name": "registry-auth",
                "secret": {"secretName": secret, "items": [{"key": ".dockerconfigjson", "path": "config.json"}]},
            }
        )
    check = {
        "name": "check-model",
        "image": p.fetch_image,
        "command": ["sh", "-c", CHECK],
        "env": [digest_env],
        "volumeMounts": [mount],
    }
    return [pull, check], volumes


def render(inp: RenderInput, templates: Environment) -> dict[str, bytes]:
    p = _profile(inp)
    name = inp.deployment.metadata.name
    namespace = p.namespace
    if namespace is not None and (not isinstance(namespace, str) or not _DNS.match(namespace)):
        raise RenderError(f"profile.namespace {namespace!r} is not a DNS label", "profile")
    replicas, port = p.replicas, p.port
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
    injector = p.secret_injector
    if injector not in (None, "vault-agent"):
        raise RenderError(f"profile.secretInjector {injector!r} is not known (vault-agent)", "profile")
    pod_secrets = PodSecrets()
    config = runner_config(inp, "/models/model.onnx").with_(reference=reference_statistics(inp))
    config = contract.RunnerConfig.from_obj(
        rewrite_refs(contract.encode(config), pod_secrets, namespace, injector)  # only env:/file: reach the pod
    )
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
    probe: dict[str, Any] = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
    init_containers, extra_volumes = _model_init_containers(inp)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"takt.dev/model-sha256": inp.model_sha256, **pod_secrets.annotations},
                },
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
                    "initContainers": init_containers,
                    "containers": [
                        {
                            "name": "runner",
                            "image": p.image,
                            "args": ["--config", f"/etc/takt/{contract.RUNNER_JSON}", "--http-port", str(port)],
                            **({"env": pod_secrets.env} if pod_secrets.env else {}),
                            "ports": [{"name": "http", "containerPort": port}],
                            "readinessProbe": dict(probe, httpGet={"path": "/readyz", "port": "http"}),
                            "livenessProbe": probe,
                            "resources": resources,
                            "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
                            "volumeMounts": [
                                {"name": "models", "mountPath": "/models", "readOnly": True},
                                {"name": "config", "mountPath": "/etc/takt", "readOnly": True},
                                *pod_secrets.mounts,
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "models", "emptyDir": {}},
                        {"name": "config", "configMap": {"name": f"{name}-runner"}},
                        *extra_volumes,
                        *pod_secrets.volumes,
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
