"""The it-server profile: the runner image, replicas and port, where pods fetch the model from."""

from __future__ import annotations

from pydantic import StrictInt

from compiler.render.profile import TargetProfile


class ItServerProfile(TargetProfile):
    image: str = "ghcr.io/takt-dev/runner@sha256:da81b8457fb890db2132e4c4f320e2d238b48d52e67cd43b39d6861db9272b17"
    """The runner image by digest: `make image` builds it reproducibly (targets/it_server/image/); renew on change."""
    fetch_image: str = "busybox:1.36"
    replicas: StrictInt = 1
    """0..1000."""
    port: StrictInt = 8080
    namespace: str | None = None
    model_store: str | None = None
    """An https:// URL: models are fetched from <modelStore>/sha256/<digest>."""
    model_registry: str | None = None
    """Or: models from an OCI registry (REGISTRY/REPOSITORY), by digest (takt publish --model-registry)."""
    model_registry_secret: str | None = None
    """A kubernetes.io/dockerconfigjson Secret the fetch uses."""
    oras_image: str = "ghcr.io/oras-project/oras:v1.2.0"
    secret_injector: str | None = None
    """vault-agent: Vault references reach the pod through the Vault Agent injector."""
