"""takt-runner's figures against its budgets (DESIGN §9), printed, never asserted by unit tests.

Run: `python bench/bench_runner.py` (needs mosquitto; everything on 127.0.0.1).

- MQTT value-to-output: a value published at the broker → the runner's prediction received from the
  broker, p50/p99 over 500 values at 100/s (budget p99 ≤ 5 ms);
- OPC UA: a value written at an in-process asyncua server → the prediction written back to its
  output node, p50 per sampling interval (budget p50 ≤ interval + 5 ms);
- overhead per inference beyond onnxruntime's own run (budget ≤ 50 µs), in process;
- idle resident memory of the runner process (budget ≤ 120 MB);
- CPU of the runner at 100 frames/s over MQTT.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compiler.bundle import runner as contract
from runner.engine import Engine
from runner.metrics import Metrics
from runner.model import load_model
from runner.outputs.base import Output
from runner.table import Table
from tests.runnerkit import config_for, start_runner, wait_for, write_bundle
from tests.serverkit import LoopThread, Mosquitto, MqttProbe, OpcUaServer


def _pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


def _verdict(ok: bool) -> str:
    return "within budget" if ok else "OVER BUDGET"


def _mqtt_bundle(root: Path, broker: Mosquitto) -> Path:
    src = contract.MqttSource(
        broker=broker.url,
        qos=0,
        fields=(
            contract.MqttField(name="a", dtype="float32", address=contract.MqttAddress(topic="b/a", json_path="$.v")),
            contract.MqttField(name="b", dtype="float32", address=contract.MqttAddress(topic="b/b")),
        ),
    )
    out = contract.MqttOutput(from_="y", topic="b/y", broker=broker.url, qos=0, name="y")
    return write_bundle(root, config_for("b", src, outputs=(out,)))


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _broker_round_trip(broker: Mosquitto, n: int = 500) -> list[float]:
    """The floor under the runner's figure: one hop through the broker and back, at the same rate."""
    probe = MqttProbe(broker.port, subscribe="echo/x")
    sent: dict[bytes, float] = {}
    try:
        for i in range(n):
            payload = str(i).encode()
            sent[payload] = time.perf_counter()
            probe.client.publish("echo/x", payload, qos=0)
            time.sleep(0.01)
        wait_for(lambda: len(probe.messages) >= n * 0.99, timeout=10, what="echoes")
        return [received - sent[p] for _, p, received in probe.messages if p in sent]
    finally:
        probe.close()


def _aiomqtt_echo(broker: Mosquitto, n: int = 500) -> list[float]:
    """The floor of the client library the runner uses: an aiomqtt client that republishes what it gets."""
    import asyncio
    import threading

    import aiomqtt

    from runner.connect import NODELAY

    ready, stop = threading.Event(), threading.Event()

    async def echo() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port, socket_options=NODELAY) as client:
            await client.subscribe("echo/in", qos=0)
            ready.set()
            async for message in client.messages:
                await client.publish("echo/out", message.payload, qos=0)
                if stop.is_set():
                    return

    thread = threading.Thread(target=lambda: asyncio.run(echo()), daemon=True)
    thread.start()
    ready.wait(5)
    probe = MqttProbe(broker.port, subscribe="echo/out")
    sent: dict[bytes, float] = {}
    try:
        for i in range(n):
            payload = str(i).encode()
            sent[payload] = time.perf_counter()
            probe.client.publish("echo/in", payload, qos=0)
            time.sleep(0.01)
        wait_for(lambda: len(probe.messages) >= n * 0.99, timeout=10, what="echoes")
        stop.set()
        probe.client.publish("echo/in", b"stop", qos=0)
        thread.join(5)
        return [received - sent[p] for _, p, received in probe.messages if p in sent]
    finally:
        probe.close()


def bench_mqtt(root: Path) -> None:
    broker = Mosquitto(root / "broker")
    rp = start_runner(_mqtt_bundle(root, broker))
    probe = MqttProbe(broker.port, subscribe="b/y")
    try:
        wait_for(lambda: rp.metric("takt_runner_source_connected", 'source="b"') == 1, what="subscribed")
        probe.publish("b/b", "0", qos=0)
        time.sleep(3.0)
        idle_rss = _rss_mb(rp.proc.pid)
        sent: dict[float, float] = {}
        latencies: list[float] = []
        n = 500
        for i in range(n):
            a = float(i + 1)
            sent[0.5 * a] = time.perf_counter()
            probe.client.publish("b/a", json.dumps({"v": a}), qos=0)
            time.sleep(0.01)
        wait_for(lambda: len(probe.messages) >= n * 0.99, timeout=10, what="predictions")
        for _, payload, received in probe.messages:
            value = json.loads(payload)["value"]
            if value in sent:
                latencies.append(received - sent[value])
        p50, p99 = _pct(latencies, 50) * 1e3, _pct(latencies, 99) * 1e3
        base, echo = _broker_round_trip(broker), _aiomqtt_echo(broker)
        print(f"floor, mosquitto alone (one hop and back): p50 {_pct(base, 50) * 1e3:.2f} ms, "
              f"p99 {_pct(base, 99) * 1e3:.2f} ms")  # fmt: skip
        print(f"floor, an aiomqtt client republishing each message (two hops, no model): p50 "
              f"{_pct(echo, 50) * 1e3:.2f} ms, p99 {_pct(echo, 99) * 1e3:.2f} ms")  # fmt: skip
        print(f"MQTT value→output over mosquitto: p50 {p50:.2f} ms, p99 {p99:.2f} ms over {len(latencies)} values "
              f"at 100/s (budget p99 ≤ 5 ms: {_verdict(p99 <= 5)})")  # fmt: skip
        print(f"idle RSS of the runner: {idle_rss:.1f} MB (budget ≤ 120 MB: {_verdict(idle_rss <= 120)})")
        probe.messages.clear()
        cpu0, wall0 = _proc_cpu(rp.proc.pid), time.perf_counter()
        for i in range(1000):
            probe.client.publish("b/a", json.dumps({"v": float(i % 50)}), qos=0)
            target = wall0 + (i + 1) * 0.01
            time.sleep(max(0.0, target - time.perf_counter()))
        cpu = (_proc_cpu(rp.proc.pid) - cpu0) / (time.perf_counter() - wall0)
        print(f"runner CPU at 100 frames/s over MQTT: {cpu * 100:.1f} % of one core")
    finally:
        probe.close()
        rp.stop()
        broker.stop()


def bench_opcua(root: Path) -> None:
    loop = LoopThread()
    server = OpcUaServer(loop)
    try:
        for interval in (0.02, 0.05, 0.1):
            d = root / f"opcua-{interval}"
            fields = tuple(
                contract.OpcUaField(name=n, dtype="float64", address=contract.OpcUaAddress(node_id=server.node_id(n)))
                for n in "ab"
            )
            src = contract.OpcUaSource(endpoint=server.endpoint, security=contract.OpcUaSecurity(mode="None",
                                       policy="None"), sampling_interval=interval, fields=fields)  # fmt: skip
            out = contract.OpcUaOutput(from_="y", node_id=server.node_id("y"), connection="plc", name="y")
            rp = start_runner(write_bundle(d, config_for("plc", src, outputs=(out,))))
            try:
                rp.wait_ready()
                server.write("b", 0.0)
                latencies = []
                for i in range(40):
                    a = 100.0 + i + interval
                    t0 = time.perf_counter()
                    server.write("a", a)
                    want = np.float32(0.5 * a)
                    while time.perf_counter() - t0 < 2.0:
                        if np.float32(server.read("y")[0]) == want:
                            latencies.append(time.perf_counter() - t0)
                            break
                        time.sleep(0.0005)
                    time.sleep(interval * 1.5)
                p50 = _pct(latencies, 50) * 1e3
                budget = interval * 1e3 + 5
                print(f"OPC UA value→output at a {interval * 1e3:.0f} ms sampling interval: p50 {p50:.1f} ms, "
                      f"p99 {_pct(latencies, 99) * 1e3:.1f} ms over {len(latencies)} writes "
                      f"(budget p50 ≤ {budget:.0f} ms: {_verdict(p50 <= budget)})")  # fmt: skip
            finally:
                rp.stop()
    finally:
        server.stop()
        loop.close()


class _Null(Output):
    async def run(self) -> None:  # never started: submit() only queues (drop-oldest), as in the runner
        return None


def bench_overhead(root: Path) -> None:
    import asyncio

    async def go() -> None:
        src = contract.FileSource(path="x.csv", format="csv", fields=tuple(
            contract.FileField(name=n, dtype="float32", range=(0.0, 1e9), address=contract.FileAddress(column=n))
            for n in "ab"))  # fmt: skip
        config = config_for("f", src)
        write_bundle(root / "overhead", config)
        metrics = Metrics.create()
        table = Table()
        table.add_source("f", ["a", "b"], None)
        table.set_connected("f", True)
        model = load_model(config, root / "overhead")
        engine = Engine(config, model, table, [_Null("y", "y", metrics)], metrics)
        feeds = {"x": np.array([[1.0, 2.0]], dtype=np.float32)}
        n = 20000
        for phase in ("warm", "run"):
            runs, steps = [], []
            for i in range(n if phase == "run" else 2000):
                table.update("f", "a", float(i % 100))
                table.update("f", "b", 2.0)
                t0 = time.perf_counter_ns()
                engine.step(table.clock())
                t1 = time.perf_counter_ns()
                model.session.run(None, feeds)
                t2 = time.perf_counter_ns()
                steps.append(t1 - t0)
                runs.append(t2 - t1)
        step, run = statistics.median(steps) / 1e3, statistics.median(runs) / 1e3
        overhead = step - run
        print(f"per inference: runner step {step:.1f} µs median, onnxruntime run alone {run:.1f} µs → overhead "
              f"{overhead:.1f} µs (budget ≤ 50 µs: {_verdict(overhead <= 50)})")  # fmt: skip

    asyncio.run(go())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench_overhead(root)
        bench_mqtt(root)
        bench_opcua(root)


if __name__ == "__main__":
    main()
