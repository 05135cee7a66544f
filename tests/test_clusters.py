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


class TwoClusters(Cluster):
    """Two it-server cluster devices in two plants, the Deployment rolled out as a canary to muc."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        platform = self.spec / "specs/platform.yaml"
        text = platform.read_text()
        second = "apiVersion: takt/v1\nkind: Device\nmetadata:\n  name: ber-cluster\n  labels: {plant: ber}\n"
        text = text.replace("---\napiVersion: takt/v1\nkind: Deployment", f"---\n{second}spec:\n  target: k8s-cpu\n"
                            "---\napiVersion: takt/v1\nkind: Deployment")  # fmt: skip
        rollout = ("  rollout:\n    strategy: canary\n    canary:\n      selector: {matchLabels: {plant: muc}}\n"
                   "      healthGate: {window: 1s, maxErrorRate: 0.01}\n")  # fmt: skip
        platform.write_text(text.replace("  monitoring:\n", rollout + "  monitoring:\n"))

    def digest_of(self, device: str) -> str:
        return json.loads((self.out / "index.json").read_text())["devices"][device][0]["digest"]

    def kustomization(self, device: str) -> dict:
        return _objects(self.show(f"clusters/{device}/kustomization.yaml"))[0]

    def healthy(self, device: str, when, quarantined: bool = False):
        """What the canary's agent would report: the step's generation applied, its runner serving the new bundle."""
        from compiler.bundle import DesiredState
        from compiler.bundle.report import Condition, RunnerHealth, StatusReport
        from compiler.fleet.reports import FleetReports

        state = DesiredState.parse(self.show(f"devices/{device}/desired.json").encode())
        runner = RunnerHealth("scratch-detector-line2", state.bundles[0].digest, ready=True, frames=900,
                              inferences=900, errors=0, error_rate=0.0)  # fmt: skip
        report = StatusReport(device, 1, when, state.generation, state.generation, state.bundles,
                              (Condition("Ready", True, "Applied"),), (runner,),
                              quarantined=(state.bundles[0].digest,) if quarantined else ())  # fmt: skip
        return lambda seen, only: FleetReports({device: report}, {device: (report,)}, seen=dict(seen))


def test_promote_rewrites_the_kustomization_of_every_cluster_device_it_moves(tmp_path: Path):
    from datetime import UTC, datetime, timedelta

    from compiler.rollout.promote import promote
    from compiler.signing import load_private_key

    fleet = TwoClusters(tmp_path)
    fleet.publish(create_branch=True)  # v1 on both clusters
    v1 = fleet.digest_of("ber-cluster")
    assert fleet.kustomization("ber-cluster")["resources"] == [f"../../bundles/{v1}"]
    bootstrap = fleet.show("clusters/ber-cluster/bootstrap/flux.yaml")
    model = fleet.spec / "specs/platform.yaml"
    model.write_text(model.read_text().replace("replicas: 2", "replicas: 3"))
    res = fleet.publish()
    assert res.rollouts_started == ["scratch-detector-line2"] and res.changed == ["muc-cluster"]
    v2 = fleet.digest_of("ber-cluster")
    assert v2 != v1
    assert fleet.kustomization("muc-cluster")["resources"] == [f"../../bundles/{v2}"]  # the canary
    assert fleet.kustomization("ber-cluster")["resources"] == [f"../../bundles/{v1}"]  # the rest keep v1

    now = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    done = promote(str(fleet.remote), "deploy", load_private_key(str(fleet.private)), fleet.healthy("muc-cluster", now),
                   now)  # fmt: skip
    assert [d.action.value for d in done.decisions] == ["promote"] and len(done.commits) == 1
    assert fleet.kustomization("ber-cluster")["resources"] == [f"../../bundles/{v2}"]
    assert fleet.kustomization("muc-cluster")["resources"] == [f"../../bundles/{v2}"]
    assert fleet.show("clusters/ber-cluster/bootstrap/flux.yaml") == bootstrap  # where it pulls from is publish's
    # exactly the files publish writes for that state: publishing again only drops the old bundle
    clusters = {d: fleet.show(f"clusters/{d}/kustomization.yaml") for d in ("ber-cluster", "muc-cluster")}
    again = fleet.publish()
    assert again.changed == [] and again.removed_bundles == [v1] and again.repaired == []
    assert {d: fleet.show(f"clusters/{d}/kustomization.yaml") for d in clusters} == clusters
    if shutil.which("kubectl"):  # the promoted path builds the way Argo CD and Flux build it
        out = subprocess.run(["kubectl", "kustomize", str(fleet.checkout() / "clusters/ber-cluster")],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert sorted(o["kind"] for o in _objects(out)) == ["ConfigMap", "Deployment", "Service"]
        assert any(o["kind"] == "Deployment" and o["spec"]["replicas"] == 3 for o in _objects(out))


def test_abort_gives_the_canary_cluster_its_previous_kustomization_back(tmp_path: Path):
    from datetime import UTC, datetime, timedelta

    from compiler.rollout.promote import promote
    from compiler.signing import load_private_key

    fleet = TwoClusters(tmp_path)
    fleet.publish(create_branch=True)
    v1 = fleet.digest_of("muc-cluster")
    model = fleet.spec / "specs/platform.yaml"
    model.write_text(model.read_text().replace("replicas: 2", "replicas: 3"))
    fleet.publish()
    v2 = fleet.digest_of("muc-cluster")
    assert fleet.kustomization("muc-cluster")["resources"] == [f"../../bundles/{v2}"]
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    failed = fleet.healthy("muc-cluster", now, quarantined=True)  # the canary rolled the new bundle back
    done = promote(str(fleet.remote), "deploy", load_private_key(str(fleet.private)), failed, now)
    assert [d.action.value for d in done.decisions] == ["abort"] and len(done.commits) == 1
    assert fleet.kustomization("muc-cluster")["resources"] == [f"../../bundles/{v1}"]
    assert fleet.kustomization("ber-cluster")["resources"] == [f"../../bundles/{v1}"]
