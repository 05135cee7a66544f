"""`vault:` secret references through hvac, against Vault's KV v2 HTTP API served on 127.0.0.1.

A Vault server is not packaged for this machine (HashiCorp ships it from its own repository), so the
test serves the one endpoint the runner uses, `GET /v1/<mount>/data/<path>` with `X-Vault-Token`, as
Vault documents it; hvac itself, unmodified, is what the runner calls.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runner.errors import StartError
from runner.secrets import SecretResolver

TOKEN = "s.test-token-never-printed"
SECRETS = {"kv/plc/press": {"credentials": '{"username": "takt", "password": "pa:ss"}', "apiKey": "k-123"}}


class _Vault(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if self.headers.get("X-Vault-Token") != TOKEN:
            return self._send(403, {"errors": ["permission denied"]})
        mount, _, rest = path.removeprefix("/v1/").partition("/data/")
        data = SECRETS.get(f"{mount}/{rest}")
        if data is None:
            return self._send(404, {"errors": []})
        return self._send(200, {"data": {"data": data, "metadata": {"version": 1}}, "lease_duration": 0})

    def _send(self, code: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def vault() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Vault)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _resolver(addr: str, token: str = TOKEN) -> SecretResolver:
    return SecretResolver({"VAULT_ADDR": addr, "VAULT_TOKEN": token}, Path("/nonexistent"))


def test_vault_references_resolve_through_hvac(vault: str) -> None:
    r = _resolver(vault)
    assert r.resolve("vault:kv/plc/press#apiKey", "outputs[0].tokenRef") == "k-123"
    creds = r.credentials("vault:kv/plc/press#credentials", "sources.plc.credentialsRef")
    assert (creds.username, creds.password) == ("takt", "pa:ss")


@pytest.mark.parametrize(
    ("ref", "token", "words"),
    [
        ("vault:kv/plc/press#apiKey", "wrong", "vault read of kv/plc/press failed (Forbidden)"),
        ("vault:kv/plc/other#apiKey", TOKEN, "vault read of kv/plc/other failed (InvalidPath)"),
        ("vault:kv/plc/press#nokey", TOKEN, "has no key 'nokey'"),
    ],
)
def test_vault_failures_stop_the_start_naming_the_field_never_the_token(
    vault: str, ref: str, token: str, words: str
) -> None:
    with pytest.raises(StartError) as info:
        _resolver(vault, token).resolve(ref, "sources.plc.credentialsRef")
    assert words in str(info.value) and info.value.what == "sources.plc.credentialsRef"
    assert token not in str(info.value) and "pa:ss" not in str(info.value)


def test_an_unreachable_vault_is_a_start_error() -> None:
    with pytest.raises(StartError, match="vault read of kv/plc/press failed"):
        _resolver("http://127.0.0.1:9").resolve("vault:kv/plc/press#apiKey", "x")
