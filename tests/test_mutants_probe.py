"""agent/probe.py against an in-process HTTP server on 127.0.0.1 that answers what each test sets
(a readiness body, an error status, /metrics text rendered by prometheus_client itself, more bytes
than the bound), and its pure parts (histogram_quantile, not_ready_because, health_of) on exact
figures. The runner tests probe real runners, too slow to start once per mutant."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

import agent.probe as pr
from agent.probe import Counters, Probe, counters, health_of, histogram_quantile, not_ready_because, probe
from agent.runners import RunnerSpec
from compiler.bundle import readiness as rd
from compiler.bundle import runner as contract
from compiler.bundle.report import ShadowHealth

INF = float("inf")
CHALLENGER = "c" * 64


class Server:
    """Answers each path with the (status, body) set for it; 404 otherwise."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.hits: list[str] = []
        self.delay: dict[str, float] = {}  # seconds before a path answers
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                code, body = outer.answers.get(self.path, (404, b"no"))
                time.sleep(outer.delay.get(self.path, 0.0))
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that stopped reading (a bound, a timeout) is what some tests make

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
    t = threading.Thread(target=s.httpd.serve_forever, daemon=True)
    t.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def srv(server: Server) -> Server:
    server.answers.clear()
    server.hits.clear()
    server.delay.clear()
    return server


def _spec(port: int, deployment: str = "line") -> RunnerSpec:
    live = Path("/s/current/deployments") / deployment
    return RunnerSpec(deployment, "d" * 64, live / "runner.json", live, port, contract.RunnerGate())


def _free_port() -> int:
    s = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = s.server_address[1]
    s.server_close()
    return port


def _metrics(
    inferences: int = 0, errors: int = 0, frames: int = 0, latencies: tuple[float, ...] = (),
    skipped: dict[str, int] | None = None, drift: dict[str, float] | None = None, shadow: str | None = None,
) -> bytes:
    reg = CollectorRegistry()
    Counter("takt_runner_frames", "f", registry=reg).inc(frames)
    Counter("takt_runner_inferences", "i", registry=reg).inc(inferences)
    Counter("takt_runner_inference_errors", "e", registry=reg).inc(errors)
    sk = Counter("takt_runner_skipped_frames", "s", ["reason"], registry=reg)
    for why, n in (skipped or {}).items():
        sk.labels(why).inc(n)
    h = Histogram(rd.INFERENCE_SECONDS, "l", buckets=(0.001, 0.005, 0.01, 0.05), registry=reg)
    for v in latencies:
        h.observe(v)
    d = Gauge(rd.DRIFT_PSI, "d", ["feature"], registry=reg)
    for f, v in (drift or {}).items():
        d.labels(f).set(v)
    if shadow is not None:
        Counter(rd.SHADOW_FRAMES, "s", ["challenger"], registry=reg).labels(shadow).inc(12)
        for name, v in ((rd.SHADOW_AGREEMENT, 0.75), (rd.SHADOW_ABS_DIFF_MEAN, 0.5), (rd.SHADOW_ABS_DIFF_P99, 1.5),
                        (rd.SHADOW_INFERENCE_P99_MS, 3.25), (rd.SHADOW_ERROR_RATE, 0.125)):
            Gauge(name, "g", ["challenger"], registry=reg).labels(shadow).set(v)
    return generate_latest(reg)


# --- _get and probe ---------------------------------------------------------------------------------


def test_get_reads_up_to_its_limit_and_refuses_one_byte_more(srv: Server) -> None:
    srv.answers["/x"] = (200, b"abcde")
    assert pr._get(f"http://127.0.0.1:{srv.port}/x", 5, 2.0) == (200, b"abcde")
    with pytest.raises(ValueError, match=r"/x: more than 4 bytes"):
        pr._get(f"http://127.0.0.1:{srv.port}/x", 4, 2.0)
    srv.answers["/e"] = (503, b"12345")
    assert pr._get(f"http://127.0.0.1:{srv.port}/e", 5, 2.0) == (503, b"12345")
    with pytest.raises(ValueError, match="more than 3 bytes"):
        pr._get(f"http://127.0.0.1:{srv.port}/e", 3, 2.0)


def test_a_ready_runner_is_live_and_ready_with_its_sources(srv: Server) -> None:
    body = rd.Readiness(True, (rd.SourceReadiness("plc", True, True),)).to_json()
    import json

    srv.answers[rd.READY_PATH] = (200, json.dumps(body).encode())
    p = probe("127.0.0.1", _spec(srv.port))
    assert p == Probe(True, rd.Readiness(True, (rd.SourceReadiness("plc", True, True),)), "")
    assert srv.hits == [rd.READY_PATH]


def test_a_not_ready_runner_answers_503_with_its_readiness(srv: Server) -> None:
    srv.answers[rd.READY_PATH] = (503, b'{"ready": false, "sources": [{"name": "plc", "connected": false}]}')
    p = probe("127.0.0.1", _spec(srv.port))
    assert p.live and p.readiness == rd.Readiness(False, (rd.SourceReadiness("plc", False, False),))


def test_an_unreadable_readiness_body_is_live_without_readiness(srv: Server) -> None:
    srv.answers[rd.READY_PATH] = (200, b"[1, 2]")
    p = probe("127.0.0.1", _spec(srv.port))
    assert p == Probe(True, None, "HTTP 200 with an unreadable readiness body "
                                  "(readiness is not an object with a boolean ready)")
    srv.answers[rd.READY_PATH] = (500, b'{"ready": "x' + b"y" * 400 + b'"}')
    p = probe("127.0.0.1", _spec(srv.port))
    assert p.live and p.readiness is None and p.error.startswith("HTTP 500 with an unreadable readiness body (")
    assert len(p.error) <= len("HTTP 500 with an unreadable readiness body ()") + 120


def test_a_parse_error_is_quoted_up_to_120_characters(srv: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    def parse(data: bytes) -> rd.Readiness:
        raise ValueError("v" * 200)

    monkeypatch.setattr(rd.Readiness, "parse", staticmethod(parse))
    srv.answers[rd.READY_PATH] = (200, b"{}")
    assert probe("127.0.0.1", _spec(srv.port)).error == f"HTTP 200 with an unreadable readiness body ({'v' * 120})"


def test_an_oversized_readiness_body_is_no_answer(srv: Server) -> None:
    srv.answers[rd.READY_PATH] = (200, b" " * (rd.MAX_READY_BYTES + 1))
    p = probe("127.0.0.1", _spec(srv.port))
    assert p.live is False and p.readiness is None
    assert p.error == (f"no answer on port {srv.port} (http://127.0.0.1:{srv.port}{rd.READY_PATH}: "
                       f"more than {rd.MAX_READY_BYTES} bytes)")
    srv.answers[rd.READY_PATH] = (200, b'{"ready": true}' + b" " * (rd.MAX_READY_BYTES - 15))
    assert probe("127.0.0.1", _spec(srv.port)).readiness == rd.Readiness(True, ())


def test_a_closed_port_is_no_answer_naming_the_port() -> None:
    port = _free_port()
    p = probe("127.0.0.1", _spec(port), timeout=1.0)
    assert p.live is False and p.readiness is None
    assert p.error.startswith(f"no answer on port {port} (") and "refused" in p.error.lower()
    assert "URLError" not in p.error  # the reason, not the wrapper
    assert len(p.error) <= 300


def test_an_error_is_cut_at_300_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(url: str, limit: int, timeout: float) -> tuple[int, bytes]:
        raise OSError("x" * 1000)

    monkeypatch.setattr(pr, "_get", boom)
    assert len(probe("127.0.0.1", _spec(1)).error) == 300


# --- histogram_quantile ---------------------------------------------------------------------------------


def test_the_quantile_interpolates_inside_the_bucket_that_holds_the_rank() -> None:
    buckets = [(0.001, 10.0), (0.005, 30.0), (0.01, 40.0), (INF, 40.0)]
    assert histogram_quantile(buckets, 0.5) == pytest.approx((0.001 + 0.004 * 10 / 20, 0.001, 0.005))
    assert histogram_quantile(buckets, 0.25) == pytest.approx((0.001, 0.0, 0.001))  # exactly at the bound
    assert histogram_quantile(buckets, 0.1) == pytest.approx((0.0004, 0.0, 0.001))
    assert histogram_quantile(buckets, 1.0) == pytest.approx((0.01, 0.005, 0.01))
    assert histogram_quantile(buckets, 0.8) == pytest.approx((0.006, 0.005, 0.01))


def test_a_rank_in_the_inf_bucket_is_the_largest_finite_bound() -> None:
    assert histogram_quantile([(0.001, 1.0), (INF, 10.0)], 0.95) == (0.001, 0.001, INF)
    assert histogram_quantile([(INF, 4.0)], 0.5) == (0.0, 0.0, INF)


def test_one_observation_is_interpolated_too() -> None:
    assert histogram_quantile([(0.01, 1.0), (INF, 1.0)], 0.5) == pytest.approx((0.005, 0.0, 0.01))


def test_an_empty_bucket_holding_the_rank_is_its_upper_bound() -> None:
    # rank 0 lands in a bucket with no observations: its upper bound, not a division by zero
    assert histogram_quantile([(0.001, 0.0), (0.01, 5.0), (INF, 5.0)], 0.0) == (0.001, 0.0, 0.001)


def test_no_observations_no_quantile() -> None:
    assert histogram_quantile([], 0.95) is None
    assert histogram_quantile([(0.001, 0.0), (INF, 0.0)], 0.95) is None
    assert histogram_quantile([(0.001, -1.0)], 0.5) is None
    assert histogram_quantile([(0.001, 1.0), (0.01, 2.0)], 1.5) is None  # a rank beyond every count


# --- counters ------------------------------------------------------------------------------------------


def test_counters_read_prometheus_clients_own_text(srv: Server) -> None:
    lat = (0.0005,) * 10 + (0.003,) * 8 + (0.02,) * 2  # 20 timed: p95 in the 0.01-0.05 bucket, p99 too
    srv.answers[rd.METRICS_PATH] = (200, _metrics(inferences=18, errors=2, frames=25, latencies=lat,
                                                  skipped={"stale": 3, "gap": 1}, drift={"a": 0.1, "b": 0.4}))
    c = counters("127.0.0.1", _spec(srv.port))
    assert (c.frames, c.inferences, c.errors, c.timed) == (25, 18, 2, 20)
    assert c.skipped == {"stale": 3, "gap": 1}
    assert c.error_rate == 0.1
    assert c.p99_ms == pytest.approx(50.0)
    assert c.p95 == pytest.approx((0.01 + 0.04 * 1 / 2, 0.01, 0.05))
    assert c.drift_max == 0.4
    assert c.shadow is None
    assert srv.hits == [rd.METRICS_PATH]


def test_a_p99_in_the_inf_bucket_is_not_stated(srv: Server) -> None:
    srv.answers[rd.METRICS_PATH] = (200, _metrics(inferences=2, latencies=(0.0001, 3.0)))
    c = counters("127.0.0.1", _spec(srv.port))
    assert c.p99_ms is None and c.timed == 2
    assert c.p95 == (0.05, 0.05, INF)


def test_empty_metrics_are_zero_counters(srv: Server) -> None:
    srv.answers[rd.METRICS_PATH] = (200, b"")
    c = counters("127.0.0.1", _spec(srv.port))
    assert c == Counters(skipped={})
    assert c.error_rate is None and c.timed == 0


def test_non_finite_samples_are_left_out(srv: Server) -> None:
    text = (f"{rd.FRAMES} 4\n{rd.FRAMES} NaN\n{rd.INFERENCES} +Inf\n{rd.INFERENCES} 3\n"
            f'{rd.DRIFT_PSI}{{feature="a"}} NaN\n{rd.DRIFT_PSI}{{feature="b"}} 0.2\n'
            f'{rd.SHADOW_FRAMES}_total{{challenger="{CHALLENGER}"}} 5\n'
            f'{rd.SHADOW_AGREEMENT}{{challenger="{CHALLENGER}"}} NaN\n'
            f'{rd.SHADOW_AGREEMENT}{{challenger="{CHALLENGER}"}} 0.5\n')
    srv.answers[rd.METRICS_PATH] = (200, text.encode())
    c = counters("127.0.0.1", _spec(srv.port))
    assert (c.frames, c.inferences, c.drift_max) == (4, 3, 0.2)
    assert c.shadow is not None and c.shadow.agreement == 0.5 and c.shadow.error_rate is None


def test_a_buckets_line_without_le_is_ignored(srv: Server) -> None:
    text = (f'{rd.INFERENCE_SECONDS}_bucket{{x="1"}} 9\n{rd.INFERENCE_SECONDS}_bucket{{le="0.01"}} 2\n'
            f'{rd.INFERENCE_SECONDS}_bucket{{le="+Inf"}} 2\n')
    srv.answers[rd.METRICS_PATH] = (200, text.encode())
    c = counters("127.0.0.1", _spec(srv.port))
    assert c.timed == 2 and c.p95 == pytest.approx((0.0095, 0.0, 0.01)) and c.p99_ms == pytest.approx(10.0)


def test_unsorted_buckets_are_sorted_by_their_bound(srv: Server) -> None:
    text = (f'{rd.INFERENCE_SECONDS}_bucket{{le="+Inf"}} 10\n{rd.INFERENCE_SECONDS}_bucket{{le="0.01"}} 10\n'
            f'{rd.INFERENCE_SECONDS}_bucket{{le="0.001"}} 0\n')
    srv.answers[rd.METRICS_PATH] = (200, text.encode())
    c = counters("127.0.0.1", _spec(srv.port))
    assert c.timed == 10 and c.p95 == pytest.approx((0.001 + 0.009 * 0.95, 0.001, 0.01))


def test_a_challengers_figures_come_with_it(srv: Server) -> None:
    srv.answers[rd.METRICS_PATH] = (200, _metrics(inferences=1, shadow=CHALLENGER))
    c = counters("127.0.0.1", _spec(srv.port))
    assert c.shadow == ShadowHealth(challenger=CHALLENGER, frames=12, agreement=0.75, mean_abs_diff=0.5,
                                    p99_abs_diff=1.5, inference_p99_ms=3.25, error_rate=0.125)


def test_with_two_challenger_series_the_figures_are_the_first_ones(srv: Server) -> None:
    """One challenger per runner (`--shadow`); were there two series, name and figures stay one pair."""
    other = "e" * 64
    text = "".join(
        f'{name}{{challenger="{who}"}} {v}\n'
        for name, pairs in ((rd.SHADOW_FRAMES + "_total", (5, 7)), (rd.SHADOW_AGREEMENT, (0.75, 0.25)))
        for who, v in zip((CHALLENGER, other), pairs, strict=True)
    )
    srv.answers[rd.METRICS_PATH] = (200, text.encode())
    c = counters("127.0.0.1", _spec(srv.port))
    assert c.shadow is not None and (c.shadow.challenger, c.shadow.agreement) == (CHALLENGER, 0.75)


def test_the_first_challenger_series_decides_whether_there_is_one(srv: Server) -> None:
    frames = rd.SHADOW_FRAMES + "_total"
    srv.answers[rd.METRICS_PATH] = (200, f'{frames}{{challenger="{CHALLENGER}"}} 5\n{frames}{{challenger="x"}} 1\n'
                                    .encode())
    c = counters("127.0.0.1", _spec(srv.port))
    assert c.shadow is not None and c.shadow.challenger == CHALLENGER
    srv.answers[rd.METRICS_PATH] = (200, f'{frames}{{challenger="x"}} 1\n{frames}{{challenger="{CHALLENGER}"}} 5\n'
                                    .encode())
    assert counters("127.0.0.1", _spec(srv.port)).shadow is None


def test_a_challenger_label_that_is_not_a_digest_is_no_challenger(srv: Server) -> None:
    srv.answers[rd.METRICS_PATH] = (200, _metrics(inferences=1, shadow="c" * 63))
    assert counters("127.0.0.1", _spec(srv.port)).shadow is None
    srv.answers[rd.METRICS_PATH] = (200, _metrics(inferences=1, shadow="c" * 65))
    assert counters("127.0.0.1", _spec(srv.port)).shadow is None


@pytest.mark.parametrize("text", [b"takt_runner_frames_total{ 1\n", b'x{a="1",a="2"} 1\n', b"x abc\n"])
def test_unreadable_metrics_are_a_value_error(srv: Server, text: bytes) -> None:
    srv.answers[rd.METRICS_PATH] = (200, text)
    with pytest.raises(ValueError, match=r"^unreadable metrics \(") as info:
        counters("127.0.0.1", _spec(srv.port))
    assert info.value.__suppress_context__


def test_a_bucket_bound_that_is_no_number_is_a_value_error(srv: Server) -> None:
    srv.answers[rd.METRICS_PATH] = (200, f'{rd.INFERENCE_SECONDS}_bucket{{le="z"}} 1\n'.encode())
    with pytest.raises(ValueError, match="could not convert"):
        counters("127.0.0.1", _spec(srv.port))


@pytest.mark.parametrize("exc", [TypeError("t"), IndexError("i"), ValueError("v" * 200)])
def test_whatever_the_parser_raises_is_unreadable_metrics(
    srv: Server, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    import prometheus_client.parser

    def parse(text: str) -> object:
        assert text == "abc\ufffd"  # decoded, bad bytes replaced
        raise exc

    monkeypatch.setattr(prometheus_client.parser, "text_string_to_metric_families", parse)
    srv.answers[rd.METRICS_PATH] = (200, b"abc\xff")
    with pytest.raises(ValueError) as info:
        counters("127.0.0.1", _spec(srv.port))
    assert str(info.value) == f"unreadable metrics ({str(exc)[:120]})"


def test_oversized_metrics_are_a_value_error(srv: Server) -> None:
    srv.answers[rd.METRICS_PATH] = (200, b"#" * (rd.MAX_METRICS_BYTES + 1))
    with pytest.raises(ValueError, match=f"more than {rd.MAX_METRICS_BYTES} bytes"):
        counters("127.0.0.1", _spec(srv.port))


def test_no_metrics_server_is_a_value_error_naming_the_port() -> None:
    port = _free_port()
    with pytest.raises(ValueError, match=rf"^no metrics on port {port} \(") as info:
        counters("127.0.0.1", _spec(port))
    assert "URLError" not in str(info.value) and info.value.__suppress_context__


def test_the_error_rate_is_errors_over_every_run() -> None:
    assert Counters(inferences=3, errors=1).error_rate == 0.25
    assert Counters(inferences=0, errors=2).error_rate == 1.0
    assert Counters(inferences=5).error_rate == 0.0
    assert Counters().error_rate is None


# --- not_ready_because, health_of ----------------------------------------------------------------------


def _src(name: str, connected: bool = True, fresh: bool = True, refused: str | None = None) -> rd.SourceReadiness:
    return rd.SourceReadiness(name, connected, fresh, refused)


def test_why_not_ready_names_the_source_refused_first_then_one_down() -> None:
    assert not_ready_because(Probe(False, None, "no answer")) == ("no answer", None)
    assert not_ready_because(Probe(False, None)) == ("not answering", None)
    p = Probe(True, rd.Readiness(False, (_src("a", fresh=False), _src("b", False), _src("c", refused="denied"))))
    assert not_ready_because(p) == ("source c refused by its server: denied", "c")
    p = Probe(True, rd.Readiness(False, (_src("a"), _src("b", fresh=False), _src("c", False))))
    assert not_ready_because(p) == ("source b is stale", "b")
    p = Probe(True, rd.Readiness(False, (_src("a"), _src("b", False, False), _src("c", fresh=False))))
    assert not_ready_because(p) == ("source b is not connected", "b")
    assert not_ready_because(Probe(True, rd.Readiness(False, (_src("a"),)))) == ("not ready", None)


def test_health_of_a_ready_runner_carries_its_figures() -> None:
    shadow = ShadowHealth(CHALLENGER, 1, 0.5, None, None, None, None)
    c = Counters(frames=7, inferences=6, errors=2, p99_ms=1.5, drift_max=0.3, shadow=shadow)
    h = health_of(_spec(1, "press"), Probe(True, rd.Readiness(True, ())), c)
    assert (h.deployment, h.bundle, h.ready, h.live, h.reason) == ("press", "d" * 64, True, True, "")
    assert (h.frames, h.inferences, h.errors, h.error_rate) == (7, 6, 2, 0.25)
    assert (h.inference_p99_ms, h.drift_psi_max, h.shadow) == (1.5, 0.3, shadow)


def test_health_of_a_runner_not_ready_or_dead_says_why() -> None:
    down = Probe(True, rd.Readiness(False, (_src("plc", False),)))
    h = health_of(_spec(1), down, None)
    assert (h.ready, h.live, h.reason, h.frames, h.error_rate) == (False, True, "source plc is not connected", 0, None)
    h = health_of(_spec(1), Probe(True, rd.Readiness(True, ())), None, "exit 1")
    assert (h.ready, h.live, h.reason) == (False, False, "runner died: exit 1")
    h = health_of(_spec(1), Probe(False, None, "silent"), None)
    assert (h.ready, h.live, h.reason) == (False, False, "silent")


def test_probes_and_counters_are_frozen_values() -> None:
    p, c = Probe(True, None, "x"), Counters(frames=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.live = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.frames = 2  # type: ignore[misc]
    assert hash(p) == hash(Probe(True, None, "x"))


# Last (the mutation run stops at the first failure, -x): the waits are bounded, as the gate's window
# assumes. These wait on a slow answer (about 4 s of sleeping, no CPU).


def test_a_probe_waits_a_second_for_an_answer(srv: Server) -> None:
    srv.answers[rd.READY_PATH] = (200, b'{"ready": true}')
    srv.delay[rd.READY_PATH] = 1.4
    p = probe("127.0.0.1", _spec(srv.port))
    assert p.live is False and "timed out" in p.error


def test_the_metrics_are_waited_for_two_seconds(srv: Server) -> None:
    srv.answers[rd.METRICS_PATH] = (200, _metrics(inferences=3))
    srv.delay[rd.METRICS_PATH] = 1.3
    assert counters("127.0.0.1", _spec(srv.port)).inferences == 3
    srv.delay[rd.METRICS_PATH] = 2.4
    with pytest.raises(ValueError, match="timed out"):
        counters("127.0.0.1", _spec(srv.port))
