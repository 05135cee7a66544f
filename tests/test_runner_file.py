"""takt-runner end to end on a replayed file: outputs equal onnxruntime's, the HTTP API, slow consumers, SIGTERM."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compiler.bundle import runner as contract
from tests.runnerkit import config_for, expected, start_runner, wait_for, write_bundle


class Sink:
    """An HTTP endpoint on 127.0.0.1 recording every JSON body; `delay` makes it a slow consumer."""

    def __init__(self, delay: float = 0.0, fail_first: int = 0) -> None:
        self.bodies: list[dict] = []
        self.attempts = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.attempts += 1
                if sink.attempts <= fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                time.sleep(delay)
                sink.bodies.append({**json.loads(body), "auth": self.headers.get("Authorization")})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/points"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    made: list[Sink] = []

    def make(**kw) -> Sink:
        made.append(Sink(**kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _file_bundle(tmp_path: Path, rows: list[tuple[float, float]], outputs=(), step: float = 0.005, **kw) -> Path:
    lines = ["timestamp,a,b"] + [f"{i * step:.4f},{a},{b}" for i, (a, b) in enumerate(rows)]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    src = contract.FileSource(
        path="data.csv",
        format="csv",
        fields=(
            contract.FileField(name="a", dtype="float32", range=(0.0, 100.0), address=contract.FileAddress(column="a")),
            contract.FileField(name="b", dtype="float32", address=contract.FileAddress(column="b")),
        ),
    )
    return write_bundle(tmp_path, config_for("replay", src, outputs=outputs, **kw))


def test_replayed_rows_reach_the_http_output_equal_to_onnxruntime(tmp_path: Path, sink):
    s = sink(fail_first=2)  # the first two attempts get 503: retried with backoff, nothing lost
    rows = [(float(i), 0.25 * i) for i in range(30)] + [(500.0, 1.0)]  # the last one is out of range
    out = contract.HttpOutput(from_="y", url=s.url, name="historian", credentials_ref="env:TAKT_TEST_TOKEN")
    rp = start_runner(_file_bundle(tmp_path, rows, outputs=(out,)), env={"TAKT_TEST_TOKEN": "s3cret"})
    try:
        wait_for(lambda: len(s.bodies) == len(rows), what="every row delivered")
        got = [b["value"] for b in s.bodies]
        assert got == pytest.approx([expected(a, b) for a, b in rows], rel=1e-6)
        assert [b["quality"] for b in s.bodies] == ["good"] * 30 + ["uncertain"]
        assert {b["auth"] for b in s.bodies} == {"Bearer s3cret"}
        assert {(b["model"], b["version"]) for b in s.bodies} == {("m", "1.0.0")}
        assert rp.metric("takt_runner_inferences_total") == len(rows)
        assert rp.metric("takt_runner_frames_total") == len(rows)
        assert rp.metric("takt_runner_out_of_range_total", 'field="a"') == 1
        assert rp.metric("takt_runner_output_errors_total", 'output="historian"') == 2
        assert rp.metric("takt_runner_inference_seconds_count") == len(rows)
        assert rp.metric("takt_runner_source_connected", 'source="replay"') == 1
    finally:
        code, err = rp.stop()
    assert code == 0, err


def test_kserve_v2_endpoints(tmp_path: Path):
    rp = start_runner(_file_bundle(tmp_path, [(1.0, 2.0)]))
    try:
        assert rp.get("/v2/health/live") == (200, {"live": True})
        assert rp.get("/healthz")[0] == 200
        rp.wait_ready()
        assert rp.get("/readyz")[0] == 200
        code, meta = rp.get("/v2/models/m")
        assert code == 200 and meta["versions"] == ["1.0.0"]
        assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]
        assert rp.get("/v2/models/nope")[0] == 404
        body = {"id": "r1", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
        code, res = rp.post("/v2/models/m/infer", body)
        assert code == 200 and res["id"] == "r1"
        assert res["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [2, 1], "data": [1.5, 3.5]}]
        bad = [
            ({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}, "datatype must be FP32"),
            ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}, "does not fit"),
            ({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1]}]}, "1 values for shape"),
            ({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": ["a", "b"]}]}, "not FP32"),
            ({"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}, "not a model input"),
            ({"inputs": [{"name": "x", "shape": [10**9, 2], "datatype": "FP32", "data": []}]}, "more than"),
            ({"inputs": []}, "missing input(s) ['x']"),
            ({"nothing": 1}, "needs an inputs list"),
            (b"{oops", "not JSON"),
            # an output named by a list is unknown (found by mypy: it was a TypeError, a 500)
            ({"inputs": body["inputs"], "outputs": [{"name": ["y"]}]}, "unknown output(s)"),
        ]
        for req, words in bad:
            code, res = rp.post("/v2/models/m/infer", req)
            assert code == 400 and words in res["error"], (req, res)
        code, _ = rp.post("/v2/models/m/infer", b"[" * 9_000_000)
        assert code in (400, 413)
        assert rp.get("/v2/health/live")[0] == 200  # none of it hurt the runner
    finally:
        code, err = rp.stop()
    assert code == 0, err


@pytest.mark.slow
def test_slow_consumer_drops_oldest_and_never_blocks_the_loop(tmp_path: Path, sink):
    s = sink(delay=0.004)
    rows = [(float(i), 0.0) for i in range(600)]  # each row's output (i / 2) is unique and increasing
    out = contract.HttpOutput(from_="y", url=s.url, name="slow")
    rp = start_runner(_file_bundle(tmp_path, rows, outputs=(out,), step=0.0002))
    try:
        wait_for(lambda: rp.metric("takt_runner_inferences_total") == len(rows), what="all rows inferred")
        t0 = time.monotonic()
        assert rp.get("/v2/health/live")[0] == 200
        assert time.monotonic() - t0 < 0.5
        wait_for(lambda: s.bodies and s.bodies[-1]["value"] == expected(*rows[-1]), what="the newest value delivered")
        dropped = rp.metric("takt_runner_output_dropped_total", 'output="slow"')
    finally:
        code, err = rp.stop()
    assert code == 0, err
    values = [b["value"] for b in s.bodies]
    assert dropped > 0 and len(values) + dropped == len(rows)  # each value was either sent or counted as dropped
    assert values == sorted(values) and len(set(values)) == len(values)  # the oldest went, order kept


@pytest.mark.slow
def test_sigterm_drains_within_seconds_even_with_a_stuck_consumer(tmp_path: Path, sink):
    s = sink(delay=2.0)
    rows = [(float(i), 0.0) for i in range(50)]
    out = contract.HttpOutput(from_="y", url=s.url, name="stuck")
    rp = start_runner(_file_bundle(tmp_path, rows, outputs=(out,), step=0.001))
    wait_for(lambda: rp.metric("takt_runner_inferences_total") == len(rows), what="all rows inferred")
    t0 = time.monotonic()
    code, err = rp.stop()
    assert code == 0 and "Traceback" not in err, err
    assert time.monotonic() - t0 < 6.0  # drains for at most 3 s, then stops
