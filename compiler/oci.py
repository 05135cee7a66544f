"""Models in an OCI registry, addressed by their sha256: pushed by publish, fetched and checked by digest.

A model is pushed as an OCI artifact whose one layer is the model file itself, so the layer's
digest *is* the model's sha256, known at build time: the it-server Deployment fetches the blob
`<registry>/<repository>@sha256:<model sha256>` and checks it again before the runner starts.
The artifact is also tagged `sha256-<hex>` so people (and garbage collection) can find it.
Pushing is idempotent: a blob the registry already has is not uploaded again.

Credentials come from the environment (`TAKT_REGISTRY_USERNAME` / `TAKT_REGISTRY_PASSWORD`) or
a docker config file (`$DOCKER_CONFIG/config.json`, `~/.docker/config.json`), never from a repo.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.models.digest import sha256_file

MEDIA_TYPE = "application/vnd.takt.model.onnx"
_REF = re.compile(r"(?P<host>[A-Za-z0-9.-]+(:[0-9]{1,5})?)/(?P<repo>[a-z0-9]+([._/-][a-z0-9]+)*)")


class RegistryError(Exception):
    """A push or fetch that did not happen; the message names the registry and why."""


@dataclass(frozen=True)
class RegistryRef:
    host: str  # registry host[:port]
    repository: str

    @classmethod
    def parse(cls, text: str) -> RegistryRef:
        m = _REF.fullmatch(text.strip())
        if m is None:
            raise RegistryError(f"{text!r} is not REGISTRY/REPOSITORY (e.g. registry.plant.local:5000/takt/models)")
        return cls(m.group("host"), m.group("repo"))

    def blob(self, sha256: str) -> str:
        return f"{self.host}/{self.repository}@sha256:{sha256}"

    def tag(self, sha256: str) -> str:
        return f"{self.host}/{self.repository}:sha256-{sha256}"


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach the registry: TLS trust (a CA bundle path, or the system's) and credentials."""

    ca_bundle: str | None = None
    insecure_http: bool = False  # plain http: for a registry on localhost only
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log or a traceback

    @classmethod
    def from_environment(cls, env: Mapping[str, str], ca_bundle: str | None = None) -> RegistryAccess:
        return cls(ca_bundle, False, env.get("TAKT_REGISTRY_USERNAME"), env.get("TAKT_REGISTRY_PASSWORD"))


@dataclass(frozen=True)
class PushedModel:
    sha256: str
    reference: str  # what the Deployment fetches
    uploaded: bool  # False: the registry had it already


def _client(ref: RegistryRef, access: RegistryAccess) -> Any:  # an oras.provider.Registry
    try:
        import oras.provider
    except ImportError as exc:
        raise RegistryError("pushing models needs the `oras` package: pip install 'takt[oci]'") from exc
    client = oras.provider.Registry(
        hostname=ref.host,
        insecure=access.insecure_http,
        tls_verify=access.ca_bundle or True,
        auth_backend="basic",
    )
    if access.username and access.password:
        client.auth.set_basic_auth(access.username, access.password)
    return client


def push_models(models: Mapping[str, Path], ref: RegistryRef, access: RegistryAccess) -> list[PushedModel]:
    """Push each model (sha256 → file); every file is hashed again first, never trusted by its name."""
    import requests

    client = _client(ref, access)
    out = []
    for sha, path in sorted(models.items()):
        if sha256_file(path) != sha:
            raise RegistryError(f"{path} does not have the sha256 {sha[:16]}… the bundle names; nothing pushed")
        container = client.get_container(ref.tag(sha))
        layer = {"digest": f"sha256:{sha}", "size": path.stat().st_size, "mediaType": MEDIA_TYPE}
        try:
            client.auth.load_configs(container)
            if client.blob_exists(layer, container):
                out.append(PushedModel(sha, ref.blob(sha), False))
                continue
            with tempfile.TemporaryDirectory(prefix="takt-oci-") as tmp:
                name = Path(tmp) / f"{sha}.onnx"  # the layer is named for its content, not the spec's path
                try:
                    os.link(path, name)
                except OSError:  # another file system
                    shutil.copyfile(path, name)
                client.push(
                    target=ref.tag(sha),
                    files=[f"{name}:{MEDIA_TYPE}"],
                    disable_path_validation=True,
                    manifest_annotations={"org.opencontainers.image.title": f"{sha}.onnx"},
                    quiet=True,
                )
        except (requests.RequestException, ValueError, OSError) as exc:
            raise RegistryError(f"cannot push model {sha[:16]}… to {ref.host}/{ref.repository}: {exc}") from exc
        out.append(PushedModel(sha, ref.blob(sha), True))
    return out


def fetch_model(ref: RegistryRef, sha256: str, dest: Path, access: RegistryAccess) -> Path:
    """Fetch the model blob by digest into `dest`, refusing any byte that does not hash to `sha256`."""
    import requests

    client = _client(ref, access)
    container = client.get_container(ref.tag(sha256))
    try:
        client.auth.load_configs(container)
        response = client.get_blob(container, f"sha256:{sha256}", stream=True)
        response.raise_for_status()
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix=".model-", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in response.iter_content(1 << 20):
                    digest.update(chunk)
                    fh.write(chunk)
            if digest.hexdigest() != sha256:
                raise RegistryError(
                    f"the registry served bytes whose sha256 is {digest.hexdigest()[:16]}…, not {sha256[:16]}…"
                )
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except requests.RequestException as exc:
        raise RegistryError(f"cannot fetch model {sha256[:16]}… from {ref.host}/{ref.repository}: {exc}") from exc
    return dest
