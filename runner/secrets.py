"""Secret references (`env:NAME`, `file:/path`, `vault:path#key`) resolved at start, never logged.

Any other scheme, a missing variable or an unreadable file stops the start with the field named.
Credentials are either `user:password` text or a JSON object {"username": …, "password": …}.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runner.errors import StartError

MAX_SECRET_BYTES = 1 << 20


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"


@dataclass(frozen=True)
class SecretResolver:
    environ: Mapping[str, str]
    base: Path  # relative file: paths are read from here (the bundle directory)

    def resolve(self, ref: str, what: str) -> str:
        scheme, sep, rest = ref.partition(":")
        if not sep or not rest:
            raise StartError(what, f"secret reference {ref[:40]!r} is not <scheme>:<path>")
        if scheme == "env":
            if rest not in self.environ:
                raise StartError(what, f"environment variable {rest} is not set")
            return self.environ[rest]
        if scheme == "file":
            path = Path(rest) if Path(rest).is_absolute() else self.base / rest
            try:
                with path.open("rb") as fh:
                    data = fh.read(MAX_SECRET_BYTES + 1)
            except OSError as exc:
                raise StartError(what, f"cannot read secret file {path} ({exc.strerror or exc})") from None
            if len(data) > MAX_SECRET_BYTES:
                raise StartError(what, f"secret file {path} is over {MAX_SECRET_BYTES} bytes")
            try:
                return data.decode("utf-8").rstrip("\n")
            except UnicodeDecodeError:
                raise StartError(what, f"secret file {path} is not UTF-8 text") from None
        if scheme == "vault":
            return self._vault(rest, what)
        raise StartError(what, f"secret scheme {scheme}: cannot be resolved on this device (use env:, file: or vault:)")

    def _vault(self, rest: str, what: str) -> str:
        path, _, key = rest.partition("#")
        addr, token = self.environ.get("VAULT_ADDR"), self.environ.get("VAULT_TOKEN")
        if not addr or not token:
            raise StartError(what, "vault: references need VAULT_ADDR and VAULT_TOKEN in the environment")
        try:
            import hvac  # optional: only devices that use Vault install it
        except ImportError:
            raise StartError(what, "vault: references need the hvac package (pip install hvac)") from None
        mount, _, sub = path.partition("/")
        try:
            client = hvac.Client(url=addr, token=token)
            kv = client.secrets.kv.v2
            data = kv.read_secret_version(path=sub, mount_point=mount, raise_on_deleted_version=True)["data"]["data"]
        except Exception as exc:  # noqa: BLE001 - any Vault failure stops the start, with its kind
            raise StartError(what, f"vault read of {path} failed ({type(exc).__name__})") from None
        if key not in data:
            raise StartError(what, f"vault secret {path} has no key {key!r}")
        return str(data[key])

    def credentials(self, ref: str, what: str) -> Credentials:
        text = self.resolve(ref, what)
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("username"), str) and isinstance(doc.get("password"), str):
            return Credentials(doc["username"], doc["password"])
        user, sep, password = text.partition(":")
        if not sep or not user:
            raise StartError(what, 'credentials must be "user:password" or {"username", "password"} JSON')
        return Credentials(user, password)
