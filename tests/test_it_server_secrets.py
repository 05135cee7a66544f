"""it-server secrets: references become what a pod can read; nothing secret or unresolvable in a ConfigMap."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.build import build
from compiler.render.context import RenderError
from compiler.validate.pipeline import validate
from targets.it_server.secrets import PodSecrets, rewrite_refs
from tests.conftest import copy_example

UNRESOLVABLE = re.compile(r'"(k8s|vault|aws-sm|azure-kv|gcp-sm):')


@pytest.fixture
def example(tmp_path: Path) -> Path:
    dst = tmp_path / "spec"
    copy_example("visual-inspection", dst)
    return dst


def _bundle(example: Path) -> tuple[dict, dict, object]:
    out = example.parent / "out"
    res = build(validate(example), out, run_gates=False)
    if not res.bundles:
        return {}, {}, res
    d = out / "bundles" / res.bundles[0].digest
    yaml = YAML(typ="safe")
    return yaml.load((d / "deployment.yaml").read_text()), yaml.load((d / "configmap.yaml").read_text()), res


def test_k8s_references_become_secret_key_refs_and_secret_volumes(example: Path):
    deployment, configmap, _ = _bundle(example)
    runner = configmap["data"]["runner.json"]
    assert not UNRESOLVABLE.search(runner), "a reference the pod cannot follow reached the ConfigMap"
    config = json.loads(runner)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    mqtt_ref = config["sources"]["line2-camera-gateway"]["credentialsRef"]
    assert mqtt_ref.startswith("env:") and env[mqtt_ref[4:]] == {"name": "mqtt-client", "key": "password"}
    ca_ref = config["sources"]["line2-camera-gateway"]["tls"]["caRef"]
    assert ca_ref.startswith("file:/var/run/takt/secrets/")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    mount_dir, key = ca_ref[5:].rsplit("/", 1)
    assert volumes[mounts[mount_dir]]["secret"] == {"secretName": "plant-ca", "items": [{"key": key, "path": key}]}


def _set_ref(example: Path, ref: str) -> None:
    sources = example / "specs/sources.yaml"
    sources.write_text(sources.read_text().replace("k8s:quality/mqtt-client#password", ref))


def test_vault_references_need_the_profiles_injector(example: Path):
    _set_ref(example, "vault:plants/muc/mqtt#password")
    _, _, res = _bundle(example)
    assert not res.bundles
    d = next(d for d in res.diagnostics if d.code == "TAKT6002")
    assert "vault:" in d.message and "secretInjector" in d.message and d.path == "spec.profile"
    platform = example / "specs/platform.yaml"
    platform.write_text(
        platform.read_text().replace("    replicas: 2\n", "    replicas: 2\n    secretInjector: vault-agent\n")
    )
    deployment, configmap, _ = _bundle(example)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["vault.hashicorp.com/agent-inject"] == "true"
    assert "plants/muc/mqtt" in annotations.values()
    assert '"file:/vault/secrets/takt-' in configmap["data"]["runner.json"]
    assert not UNRESOLVABLE.search(configmap["data"]["runner.json"])


@pytest.mark.parametrize("ref", ["aws-sm:plant/mqtt", "k8s:other-ns/mqtt-client#password", "gcp-sm:x"])
def test_references_a_pod_cannot_read_are_refused_at_the_target(example: Path, ref: str):
    _set_ref(example, ref)
    _, _, res = _bundle(example)
    assert not res.bundles and any(d.code == "TAKT6002" and d.path == "spec.profile" for d in res.diagnostics)


@pytest.mark.parametrize(
    "ref", ['vault:a"b#k', "vault:a}}{{#k", "vault:a#k{{.}}", "vault:../x#k", "k8s:Quality/x#k", "k8s:q/x"]
)
def test_hostile_reference_text_never_reaches_an_annotation_template(ref: str):
    with pytest.raises(RenderError):
        rewrite_refs({"credentialsRef": ref}, PodSecrets(), "q", "vault-agent")
