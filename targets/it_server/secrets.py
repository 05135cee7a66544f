"""Secret references of an it-server bundle, made into what a pod can actually read.

The runner resolves only `env:` and `file:` references. In a pod, `k8s:<ns>/<secret>#<key>`
becomes an environment variable filled from the Secret (`secretKeyRef`), and `vault:<path>#<key>`
a file written by the secret injector the target's profile names (`profile.secretInjector:
vault-agent`). runner.json (a ConfigMap) then holds only `env:`/`file:` names: never a secret,
never a reference the pod cannot follow. Anything else is refused with the field it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from compiler.render.context import RenderError

_K8S = re.compile(
    r"^k8s:(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(?P<name>[a-z0-9]([-.a-z0-9]*[a-z0-9])?)#(?P<key>[-._A-Za-z0-9]+)$"
)
_VAULT = re.compile(r"^vault:(?P<path>[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)#(?P<key>[A-Za-z0-9_.-]+)$")
_SCHEME = re.compile(r"^([a-z0-9-]+):")
VAULT_DIR = "/vault/secrets"
SECRETS_DIR = "/var/run/takt/secrets"  # not under /etc/takt: that is the ConfigMap mount
FILE_REFS = ("caRef", "certificateRef")  # certificates are files to a TLS stack; credentials are values


@dataclass
class PodSecrets:
    """What the Deployment needs so the rewritten references resolve."""

    env: list[dict[str, Any]] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    _seen: dict[str, str] = field(default_factory=dict)

    def rewrite(self, ref: str, where: str, namespace: str | None, injector: str | None, as_file: bool = False) -> str:
        if ref in self._seen:
            return self._seen[ref]
        n = len(self._seen)
        scheme = (_SCHEME.match(ref) or [None, "?"])[1]
        if scheme in ("env", "file"):
            out = ref
        elif scheme == "k8s":
            m = _K8S.match(ref)
            if m is None:
                raise RenderError(f"{where}: a k8s: reference is k8s:<namespace>/<secret>#<key>")
            if namespace is not None and m.group("ns") != namespace:
                raise RenderError(
                    f"{where}: Secret {m.group('ns')}/{m.group('name')} is not in the target's namespace "
                    f"{namespace!r}; a pod reads Secrets of its own namespace only",
                    "profile",
                )
            secret, key = m.group("name"), m.group("key")
            if as_file:
                volume = f"takt-secret-{n}"
                self.volumes.append(
                    {"name": volume, "secret": {"secretName": secret, "items": [{"key": key, "path": key}]}}
                )
                self.mounts.append({"name": volume, "mountPath": f"{SECRETS_DIR}/{n}", "readOnly": True})
                out = f"file:{SECRETS_DIR}/{n}/{key}"
            else:
                var = f"TAKT_SECRET_{n}"
                self.env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
                out = f"env:{var}"
        elif scheme == "vault" and injector == "vault-agent":
            m = _VAULT.match(ref)
            if m is None or {".", ".."} & set(m.group("path").split("/")):
                raise RenderError(f"{where}: a vault: reference is vault:<path>#<key> (letters, digits, . _ -)")
            name = f"takt-{n}"
            self.annotations["vault.hashicorp.com/agent-inject"] = "true"
            self.annotations[f"vault.hashicorp.com/agent-inject-secret-{name}"] = m.group("path")
            self.annotations[f"vault.hashicorp.com/agent-inject-template-{name}"] = (
                f'{{{{- with secret "{m.group("path")}" -}}}}{{{{ .Data.data.{m.group("key")} }}}}{{{{- end -}}}}'
            )
            out = f"file:{VAULT_DIR}/{name}"
        else:
            injectors = "profile.secretInjector: vault-agent" if scheme == "vault" else "none yet"
            raise RenderError(
                f"{where}: {scheme}: references cannot be read by an it-server pod (supported: k8s:, env:, file:; "
                f"for {scheme}: {injectors})",
                "profile",
            )
        self._seen[ref] = out
        return out


def rewrite_refs(config: Any, secrets: PodSecrets, namespace: str | None, injector: str | None, where: str = "") -> Any:
    """A copy of `config` whose `…Ref` values the pod can resolve."""
    if isinstance(config, dict):
        return {
            k: secrets.rewrite(v, f"{where}.{k}".lstrip("."), namespace, injector, k in FILE_REFS)
            if k.endswith("Ref") and isinstance(v, str)
            else rewrite_refs(v, secrets, namespace, injector, f"{where}.{k}".lstrip("."))
            for k, v in config.items()
        }
    if isinstance(config, list):
        return [rewrite_refs(v, secrets, namespace, injector, f"{where}[{i}]") for i, v in enumerate(config)]
    return config
