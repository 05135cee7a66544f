"""Models through a real OCI registry (Debian's docker-registry on 127.0.0.1, TLS and basic auth)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.build import build
from compiler.oci import RegistryAccess, RegistryError, RegistryRef, fetch_model, push_models
from compiler.publish import PublishError, publish
from compiler.signing import keygen
from compiler.validate.pipeline import validate
from tests.agentkit import free_port, wait_for_port
from tests.conftest import copy_example
from tests.tlskit import localhost_cert

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("docker-registry") and shutil.which("htpasswd")),
        reason="docker-registry and htpasswd (Debian packages docker-registry, apache2-utils) are not installed here",
    ),
]
USER, PASSWORD = "ci", "s3cret-registry-pass"


class Registry:
    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "storage"
        cert, key = localhost_cert(tmp / "tls")
        self.ca = str(cert)
        htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True)
        (tmp / "htpasswd").write_text(htpasswd.stdout)
        self.port = free_port()
        config = {
            "version": 0.1,
            "log": {"level": "error"},
            "storage": {"filesystem": {"rootdirectory": str(self.root)}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{self.port}", "tls": {"certificate": str(cert), "key": str(key)}},
            "auth": {"htpasswd": {"realm": "takt-test", "path": str(tmp / "htpasswd")}},
        }
        (tmp / "config.yml").write_text(json.dumps(config))
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(tmp / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_for_port(self.port, "docker-registry", timeout=20)

    @property
    def ref(self) -> RegistryRef:
        return RegistryRef.parse(f"127.0.0.1:{self.port}/takt/models")

    def access(self, password: str = PASSWORD) -> RegistryAccess:
        return RegistryAccess(ca_bundle=self.ca, username=USER, password=password)

    def blob_file(self, sha: str) -> Path:
        return self.root / "docker/registry/v2/blobs/sha256" / sha[:2] / sha / "data"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


def _model(tmp: Path, content: bytes) -> tuple[str, Path]:
    path = tmp / "m.onnx"
    path.write_bytes(content)
    return hashlib.sha256(content).hexdigest(), path


def test_a_model_is_pushed_by_digest_idempotently_and_pulled_back(registry: Registry, tmp_path: Path):
    sha, path = _model(tmp_path, b"onnx model bytes " + tmp_path.name.encode())
    first = push_models({sha: path}, registry.ref, registry.access())
    assert [(p.sha256, p.uploaded) for p in first] == [(sha, True)]
    assert first[0].reference == f"127.0.0.1:{registry.port}/takt/models@sha256:{sha}"
    again = push_models({sha: path}, registry.ref, registry.access())
    assert [p.uploaded for p in again] == [False]
    back = fetch_model(registry.ref, sha, tmp_path / "back.onnx", registry.access())
    assert back.read_bytes() == path.read_bytes()


def test_wrong_credentials_and_untrusted_tls_are_refused(registry: Registry, tmp_path: Path):
    sha, path = _model(tmp_path, b"another model")
    with pytest.raises(RegistryError):
        push_models({sha: path}, registry.ref, registry.access(password="wrong"))
    with pytest.raises(RegistryError):
        push_models({sha: path}, registry.ref, RegistryAccess(username=USER, password=PASSWORD))  # system CAs only


def test_a_file_whose_bytes_do_not_match_its_name_is_never_pushed(registry: Registry, tmp_path: Path):
    sha, path = _model(tmp_path, b"model v1")
    path.write_bytes(b"model v2")
    with pytest.raises(RegistryError, match="does not have the sha256"):
        push_models({sha: path}, registry.ref, registry.access())


def test_a_tampered_blob_is_refused_by_the_fetch_digest_check(registry: Registry, tmp_path: Path):
    sha, path = _model(tmp_path, b"model to be tampered with " + tmp_path.name.encode())
    push_models({sha: path}, registry.ref, registry.access())
    blob = registry.blob_file(sha)
    assert blob.read_bytes() == path.read_bytes()
    blob.write_bytes(b"evil" + path.read_bytes()[4:])
    with pytest.raises(RegistryError, match="sha256"):
        fetch_model(registry.ref, sha, tmp_path / "back.onnx", registry.access())
    assert not (tmp_path / "back.onnx").exists()


def test_publish_pushes_it_server_models_and_the_deployment_fetches_them_by_digest(registry: Registry, tmp_path: Path):
    spec = tmp_path / "spec"
    copy_example("visual-inspection", spec)
    platform = spec / "specs/platform.yaml"
    ref = f"127.0.0.1:{registry.port}/takt/models"
    platform.write_text(
        platform.read_text().replace(
            "    modelStore: https://models.muc.plant.local\n",
            f"    modelRegistry: {ref}\n    modelRegistrySecret: takt-registry\n",
        )
    )
    out = tmp_path / "out"
    result = build(validate(spec), out, run_gates=False)
    assert not result.failed, result.diagnostics
    remote = tmp_path / "deploy.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    private, _, _ = keygen(tmp_path / "keys")
    with pytest.raises(PublishError, match="nothing was published"):
        publish(
            out,
            str(remote),
            "deploy",
            str(private),
            create_branch=True,
            model_registry=registry.ref,
            registry_access=registry.access(password="wrong"),
        )
    assert subprocess.run(["git", "--git-dir", str(remote), "rev-parse", "--verify", "-q", "deploy"]).returncode != 0
    res = publish(
        out,
        str(remote),
        "deploy",
        str(private),
        create_branch=True,
        model_registry=registry.ref,
        registry_access=registry.access(),
    )
    assert res.commit and len(res.pushed_models) == 1
    sha = res.pushed_models[0].sha256
    digest = result.bundles[0].digest
    deployment = subprocess.run(
        ["git", "--git-dir", str(remote), "show", f"deploy:bundles/{digest}/deployment.yaml"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pod = YAML(typ="safe").load(deployment)["spec"]["template"]["spec"]
    fetch, check = pod["initContainers"]
    assert fetch["args"][-1] == f"{ref}@sha256:{sha}" and "MODEL_SHA256" in json.dumps(check)
    assert {"name": "DOCKER_CONFIG", "value": "/etc/takt/registry"} in fetch["env"]
    assert (
        fetch_model(registry.ref, sha, tmp_path / "pulled.onnx", registry.access()).read_bytes()
        == (spec / "models/scratch_detector.onnx").read_bytes()
    )
