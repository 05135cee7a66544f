"""Kubernetes delivery from the deploy branch: one stable path per cluster, Argo CD and Flux manifests, signing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.build import build
from compiler.publish import CommitSigning, publish
from compiler.signing import keygen
from compiler.validate.pipeline import validate
from tests.conftest import ROOT, copy_example

pytestmark = pytest.mark.slow  # real tools: git, kubectl, node, ssh-keygen

VALIDATOR = ROOT / "tests" / "k8s"
CLUSTER_URL = "https://git.plant.example/muc/deploy.git"


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.spec = tmp / "spec"
        copy_example("visual-inspection", self.spec)
        self.remote = tmp / "deploy.git"
        _git("init", "-q", "--bare", str(self.remote))
        self.private, _, _ = keygen(tmp / "keys")
        self.out = tmp / "out"

    def publish(self, **kw):
        build(validate(self.spec), self.out, run_gates=False)
        return publish(self.out, str(self.remote), "deploy", str(self.private), cluster_url=CLUSTER_URL, **kw)

    def show(self, path: str) -> str:
        return _git("--git-dir", str(self.remote), "show", f"deploy:{path}")

    def digests(self) -> list[str]:
        index = json.loads((self.out / "index.json").read_text())
        return [e["digest"] for e in index["devices"]["muc-cluster"]]

    def checkout(self) -> Path:
        co = self.tmp / f"co-{len(list(self.tmp.glob('co-*')))}"
        _git("clone", "-q", "--branch", "deploy", str(self.remote), str(co))
        return co


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path)


def _objects(text: str) -> list[dict]:
    return [d for d in YAML(typ="safe").load_all(text) if d]


def test_the_cluster_path_lists_its_current_bundles_and_stays_put(cluster: Cluster):
    cluster.publish(create_branch=True)
    first = cluster.digests()
    kust = _objects(cluster.show("clusters/muc-cluster/kustomization.yaml"))[0]
    assert kust["resources"] == [f"../../bundles/{d}" for d in first]
    model = cluster.spec / "specs/platform.yaml"
    model.write_text(model.read_text().replace("replicas: 2", "replicas: 3"))
    res = cluster.publish()
    assert res.commit and res.repaired == []
    second = cluster.digests()
    assert second != first
    kust = _objects(cluster.show("clusters/muc-cluster/kustomization.yaml"))[0]
    assert kust["resources"] == [f"../../bundles/{d}" for d in second]  # same path, new bundles
    app = _objects(cluster.show("clusters/muc-cluster/bootstrap/argocd-application.yaml"))[0]
    assert app["spec"]["source"] == {"repoURL": CLUSTER_URL, "targetRevision": "deploy", "path": "clusters/muc-cluster"}
    assert cluster.publish().commit is None


def test_edge_devices_get_no_cluster_path(tmp_path: Path):
    spec = tmp_path / "spec"
    copy_example("press-line-anomaly", spec)
    remote = tmp_path / "deploy.git"
    _git("init", "-q", "--bare", str(remote))
    private, _, _ = keygen(tmp_path / "keys")
    build(validate(spec), tmp_path / "out", run_gates=False)
    publish(tmp_path / "out", str(remote), "deploy", str(private), create_branch=True)
    tree = _git("--git-dir", str(remote), "ls-tree", "-r", "--name-only", "deploy").split()
    assert not [p for p in tree if p.startswith("clusters/")]


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed on this machine")
def test_the_cluster_path_builds_with_kustomize_as_argo_cd_and_flux_run_it(cluster: Cluster):
    cluster.publish(create_branch=True)
    co = cluster.checkout()
    out = subprocess.run(
        ["kubectl", "kustomize", str(co / "clusters/muc-cluster")], capture_output=True, text=True, check=True
    ).stdout
    kinds = sorted(o["kind"] for o in _objects(out))
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    assert all(o["metadata"].get("namespace") == "quality" for o in _objects(out))


def _validate_crds(objects: list[dict]) -> list[dict]:
    if not shutil.which("node"):
        pytest.skip("node is not installed on this machine: the CRD schema check runs on Node.js")
    if not (VALIDATOR / "node_modules").is_dir():
        pytest.fail("the CRD schema packages are not installed: run `make tools` (npm ci in tests/k8s)")
    proc = subprocess.run(
        ["node", str(VALIDATOR / "validate.mjs")], input=json.dumps(objects), capture_output=True, text=True, timeout=60
    )
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_bootstrap_manifests_are_valid_argo_cd_and_flux_objects(cluster: Cluster):
    cluster.publish(create_branch=True, commit_signing=None)
    objects = _objects(cluster.show("clusters/muc-cluster/bootstrap/argocd-application.yaml"))
    objects += _objects(cluster.show("clusters/muc-cluster/bootstrap/flux.yaml"))
    assert sorted(o["kind"] for o in objects) == ["Application", "GitRepository", "Kustomization"]
    verdicts = _validate_crds(objects)
    assert [v["ok"] for v in verdicts] == [True, True, True], verdicts
    broken = json.loads(json.dumps(objects))
    broken[0]["spec"]["syncPolicy"]["automated"]["prune"] = "yes"  # the validator can say no
    del broken[1]["spec"]["url"]
    broken[2]["spec"]["interval"] = 5
    assert [v["ok"] for v in _validate_crds(broken)] == [False, False, False]


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen is not installed on this machine")
def test_deploy_commits_are_signed_with_ssh_and_verify(cluster: Cluster):
    key = cluster.tmp / "publisher"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "takt-ci", "-f", str(key)], check=True)
    res = cluster.publish(create_branch=True, commit_signing=CommitSigning(ssh_key=key))
    signers = cluster.tmp / "allowed_signers"
    signers.write_text(f"takt@localhost {Path(str(key) + '.pub').read_text()}")
    verify = ["git", "--git-dir", str(cluster.remote), "-c", f"gpg.ssh.allowedSignersFile={signers}"]
    ok = subprocess.run([*verify, "verify-commit", res.commit], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "Good" in ok.stderr
    flux = _objects(cluster.show("clusters/muc-cluster/bootstrap/flux.yaml"))
    assert flux[0]["spec"]["verify"] == {"mode": "HEAD", "secretRef": {"name": "takt-deploy-signers"}}
    other = cluster.tmp / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    signers.write_text(f"takt@localhost {Path(str(other) + '.pub').read_text()}")
    assert subprocess.run([*verify, "verify-commit", res.commit], capture_output=True).returncode != 0


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen is not installed on this machine")
def test_publish_cli_signs_with_an_ssh_key(cluster: Cluster, cli_run):
    key = cluster.tmp / "publisher"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    args = ["publish", str(cluster.spec), "--deploy-repo", str(cluster.remote), "--key", str(cluster.private)]
    code, out = cli_run(*args, "--create-branch", "--ssh-signing-key", str(key), "--cluster-repo-url", CLUSTER_URL)
    assert code == 0, out
    raw = _git("--git-dir", str(cluster.remote), "cat-file", "commit", "deploy")
    assert "-----BEGIN SSH SIGNATURE-----" in raw
