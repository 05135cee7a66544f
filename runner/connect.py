"""Connection settings shared by sources and outputs: MQTT client arguments, OPC UA clients and node ids.

Secrets are resolved here, at start, so a wrong reference stops the runner before any traffic.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from compiler.bundle import runner as contract
from runner.errors import StartError
from runner.secrets import SecretResolver

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]  # values go out at once, not batched by Nagle


@dataclass(frozen=True)
class MqttParams:
    hostname: str
    port: int
    kwargs: dict[str, Any]  # the rest of aiomqtt.Client's arguments (credentials, TLS, socket options)


def mqtt_params(
    broker: str,
    resolver: SecretResolver,
    what: str,
    credentials_ref: str | None = None,
    tls: contract.MqttTls | None = None,
    client_id: str | None = None,
) -> MqttParams:
    parts = urlsplit(broker)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise StartError(what, f"broker {broker!r}: the runner speaks mqtt:// and mqtts:// (not websockets yet)")
    secure = parts.scheme == "mqtts"
    kwargs: dict[str, Any] = {"socket_options": NODELAY, "identifier": client_id, "timeout": 5.0}
    if credentials_ref:
        creds = resolver.credentials(credentials_ref, f"{what}.credentialsRef")
        kwargs |= {"username": creds.username, "password": creds.password}
    if secure:
        context = ssl.create_default_context()
        if tls and tls.ca_ref:
            context.load_verify_locations(cadata=resolver.resolve(tls.ca_ref, f"{what}.tls.caRef"))
        if tls and tls.certificate_ref:
            raise StartError(f"{what}.tls.certificateRef", "client certificates for MQTT are not supported yet")
        kwargs["tls_context"] = context
    return MqttParams(parts.hostname, parts.port or (8883 if secure else 1883), kwargs)


async def opcua_client(source: contract.OpcUaSource, resolver: SecretResolver, what: str) -> Any:
    """An asyncua Client configured with the source's security mode, policy, certificate and user."""
    from asyncua import ua
    from asyncua.client.client import Client  # the module that defines it (asyncua re-exports it implicitly)
    from asyncua.crypto import security_policies

    client = Client(source.endpoint, timeout=4)
    sec = source.security
    if sec.credentials_ref:
        creds = resolver.credentials(sec.credentials_ref, f"{what}.security.credentialsRef")
        client.set_user(creds.username)
        client.set_password(creds.password)
    if sec.mode != "None":
        if not sec.certificate_ref:
            raise StartError(f"{what}.security", f"mode {sec.mode} needs certificateRef (client certificate and key)")
        pem = resolver.resolve(sec.certificate_ref, f"{what}.security.certificateRef").encode()
        cert, key = split_pem(pem, f"{what}.security.certificateRef")
        policy = getattr(security_policies, f"SecurityPolicy{sec.policy}", None)
        if policy is None:
            raise StartError(f"{what}.security.policy", f"policy {sec.policy} is not available in asyncua")
        mode = getattr(ua.MessageSecurityMode, sec.mode)
        try:
            await client.set_security(policy, cert, key, mode=mode)
        except Exception as exc:  # noqa: BLE001 - a certificate asyncua cannot use stops the start
            raise StartError(f"{what}.security.certificateRef", f"unusable certificate or key ({exc})") from None
    return client


def split_pem(pem: bytes, what: str) -> tuple[bytes, bytes]:
    """One PEM text with the client certificate and its private key → (certificate, key), both DER."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
        key = serialization.load_pem_private_key(pem[pem.index(b"-----BEGIN", pem.index(b"END CERTIFICATE")) :], None)
    except (ValueError, TypeError) as exc:
        raise StartError(what, f"expected a PEM certificate followed by its private key ({exc})") from None
    return cert, key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


async def resolve_node_id(client: Any, text: str) -> Any:
    """`nsu=<uri>;…` → the NodeId with the namespace's index on this server now (indexes move on restarts)."""
    from asyncua import ua

    if text.startswith("nsu="):
        uri, _, rest = text[4:].partition(";")
        try:
            index = await client.get_namespace_index(uri)
        except ValueError:
            raise ValueError(f"namespace {uri[:120]!r} is not on this server") from None
        return ua.NodeId.from_string(f"ns={index};{rest}")
    return ua.NodeId.from_string(text)


def split_host_port(endpoint: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or a bare host (the protocol's default port)."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit() or (host.startswith("[") != host.endswith("]")):
        host, port = endpoint, str(default_port)
    return host.strip("[]"), int(port)
