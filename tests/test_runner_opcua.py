"""takt-runner against an in-process asyncua server: subscriptions in, writes out, outages, moved namespaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.bundle import runner as contract
from tests.runnerkit import config_for, expected, start_runner, wait_for, write_bundle
from tests.serverkit import LoopThread, OpcUaServer

pytestmark = pytest.mark.slow


@pytest.fixture
def loop():
    lt = LoopThread()
    yield lt
    lt.close()


def _bundle(tmp_path: Path, server: OpcUaServer, credentials_ref: str | None = None) -> Path:
    fields = tuple(
        contract.OpcUaField(name=n, dtype="float64", range=(0.0, 100.0),
                            address=contract.OpcUaAddress(node_id=server.node_id(n)))
        for n in "ab"
    )  # fmt: skip
    src = contract.OpcUaSource(
        endpoint=server.endpoint,
        security=contract.OpcUaSecurity(mode="None", policy="None", credentials_ref=credentials_ref),
        sampling_interval=0.05,
        fields=fields,
    )
    out = contract.OpcUaOutput(from_="y", node_id=server.node_id("y"), connection="plc", name="y-node")
    return write_bundle(tmp_path, config_for("plc", src, outputs=(out,)))


def _y_is(server: OpcUaServer, value: float):
    def check():
        got, status = server.read("y")
        return (got, status) if got == pytest.approx(value, rel=1e-6) else None

    return check


def test_value_written_at_the_plc_appears_at_the_output_node(tmp_path: Path, loop: LoopThread):
    server = OpcUaServer(loop)
    rp = start_runner(_bundle(tmp_path, server))
    try:
        rp.wait_ready()  # subscribed: the initial values arrive as the first notifications
        server.write("a", 12.5)
        server.write("b", 3.25)
        _, status = wait_for(_y_is(server, expected(12.5, 3.25)), what="y written")
        assert status.is_good()
        server.write("a", 150.0)  # out of range: written, marked Uncertain
        _, status = wait_for(_y_is(server, expected(150.0, 3.25)), what="uncertain y")
        assert status.is_uncertain()
        server.write("b", 5.0, good=False)  # a bad status from the PLC: no inference
        wait_for(lambda: rp.metric("takt_runner_skipped_frames_total", 'reason="bad-quality"') >= 1,
                 what="bad quality counted")  # fmt: skip
        assert server.read("y")[0] == pytest.approx(expected(150.0, 3.25))
        rp.wait_ready(False)
        server.write("b", 5.0)
        wait_for(_y_is(server, expected(150.0, 5.0)), what="recovered after a good value")
    finally:
        code, err = rp.stop()
        server.stop()
    assert code == 0, err


def test_outage_and_a_moved_namespace_index_after_restart(tmp_path: Path, loop: LoopThread):
    server = OpcUaServer(loop)
    first_index = server.index
    rp = start_runner(_bundle(tmp_path, server))
    try:
        rp.wait_ready()
        server.stop()
        rp.wait_ready(False)
        assert rp.get("/v2/health/live")[0] == 200
        assert rp.get("/v2/health/ready")[1]["sources"][0]["refused"] is None  # down, not refusing
        server.restart(shift=3)  # the same URI now has another namespace index
        assert server.index != first_index
        rp.wait_ready(timeout=20)
        server.write("a", 7.0)
        server.write("b", 9.0)
        wait_for(_y_is(server, expected(7.0, 9.0)), timeout=15, what="y written through the new index")
    finally:
        rp.stop()
        server.stop()


def test_wrong_credentials_never_ready(tmp_path: Path, loop: LoopThread):
    server = OpcUaServer(loop, users={"takt": "right"})
    (tmp_path / "creds").write_text('{"username": "takt", "password": "wrong"}')
    rp = start_runner(_bundle(tmp_path, server, credentials_ref="file:creds"))
    try:
        for _ in range(20):
            assert rp.get("/v2/health/ready")[0] == 503
            assert rp.get("/v2/health/live")[0] == 200
        assert rp.metric("takt_runner_source_connected", 'source="plc"') == 0
        refused = wait_for(lambda: rp.get("/v2/health/ready")[1]["sources"][0]["refused"], what="refusal named")
        assert refused.startswith(("BadUserAccessDenied", "BadIdentityToken")), refused
    finally:
        rp.stop()
    (tmp_path / "creds").write_text('{"username": "takt", "password": "right"}')
    rp = start_runner(_bundle(tmp_path, server, credentials_ref="file:creds"))
    try:
        rp.wait_ready()
    finally:
        rp.stop()
        server.stop()


def test_sign_and_encrypt_with_the_certificate_from_its_reference(tmp_path: Path, loop: LoopThread):
    from tests.serverkit import app_certificate

    server = OpcUaServer(loop, secure=app_certificate("urn:freeopcua:python:server", "takt test server"))
    cert, key = app_certificate("urn:freeopcua:client", "takt runner")
    (tmp_path / "client.pem").write_bytes(cert + key)
    fields = tuple(
        contract.OpcUaField(name=n, dtype="float64", address=contract.OpcUaAddress(node_id=server.node_id(n)))
        for n in "ab"
    )
    security = contract.OpcUaSecurity(mode="SignAndEncrypt", policy="Basic256Sha256", certificate_ref="file:client.pem")
    src = contract.OpcUaSource(endpoint=server.endpoint, security=security, sampling_interval=0.05, fields=fields)
    out = contract.OpcUaOutput(from_="y", node_id=server.node_id("y"), connection="plc", name="y-node")
    rp = start_runner(write_bundle(tmp_path, config_for("plc", src, outputs=(out,))))
    try:
        rp.wait_ready()
        server.write("a", 4.0)
        wait_for(_y_is(server, expected(4.0, 2.0)), what="y written over an encrypted session")
    finally:
        rp.stop()
        server.stop()
