"""One stable path per Kubernetes cluster on the deploy branch, for Argo CD and Flux to follow forever.

Bundles live under a new `bundles/<digest>/` at every release, but a GitOps engine is pointed at
one path once. `clusters/<device>/kustomization.yaml` is that path: it lists the cluster's
current it-server bundles as kustomize bases, and publish rewrites it in the same commit that
adds them. Beside it, `bootstrap/` holds the one-time manifests a cluster admin applies: an
Argo CD `Application` and a Flux `GitRepository` + `Kustomization`, both aimed at that path.
The bootstrap files are not part of the kustomization, so neither engine applies them itself.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from compiler.render.escape import to_yaml

CLUSTER_CLASS = "it-server"
ARGOCD_NAMESPACE, FLUX_NAMESPACE = "argocd", "flux-system"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class ClusterSource:
    """Where the cluster pulls the deploy branch from (often not the URL CI pushes to)."""

    url: str
    branch: str
    verify_commits: bool = False  # Flux verifies the deploy commit's signature (SSH or OpenPGP)


def public_url(url: str) -> str:
    """The URL without credentials: a CI push URL often carries a token, which must never reach the branch."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def resource_name(device: str) -> str:
    """`takt-<device>` as a DNS label; device ids that are not get a short digest suffix."""
    base = f"takt-{device}"
    if _DNS_LABEL.fullmatch(base):  # lower case only: `Line-1` and `line-1` must not share a name
        return base
    clean = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")[:50]
    return f"{clean}-{hashlib.sha256(device.encode()).hexdigest()[:8]}"


def cluster_files(device: str, digests: list[str], source: ClusterSource) -> dict[str, bytes]:
    """The files of `clusters/<device>/`, relative to the branch root."""
    root = f"clusters/{device}"
    source = ClusterSource(public_url(source.url), source.branch, source.verify_commits)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f"../../bundles/{d}" for d in sorted(digests)],
    }
    name = resource_name(device)
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "takt"}},
        "spec": {
            "project": "default",
            "source": {"repoURL": source.url, "targetRevision": source.branch, "path": root},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }
    git_repository: dict[str, Any] = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
        "spec": {"interval": "1m0s", "url": source.url, "ref": {"branch": source.branch}},
    }
    if source.verify_commits:
        git_repository["spec"]["verify"] = {"mode": "HEAD", "secretRef": {"name": "takt-deploy-signers"}}
    flux_kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
        "spec": {
            "interval": "5m0s",
            "path": f"./{root}",
            "prune": True,
            "wait": True,
            "sourceRef": {"kind": "GitRepository", "name": name},
        },
    }
    return {
        f"{root}/kustomization.yaml": to_yaml(kustomization).encode(),
        f"{root}/bootstrap/argocd-application.yaml": to_yaml(application).encode(),
        f"{root}/bootstrap/flux.yaml": (to_yaml(git_repository) + "---\n" + to_yaml(flux_kustomization)).encode(),
    }
