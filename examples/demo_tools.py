"""Small helpers `make demo` (examples/demo.sh) calls, so the script needs no curl, jq or nc.

    demo_tools.py free-port                      a TCP port free on 127.0.0.1 now
    demo_tools.py historian PORT FILE            a stand-in for the bench's historian: every POSTed
                                                 point appended to FILE as one JSON line (until SIGTERM)
    demo_tools.py wait-ready PORT SECONDS        wait for the runner's /v2/health/ready; exit 1 if it never is
    demo_tools.py points FILE                    what the historian received, in plain words
    demo_tools.py metrics PORT                   the runner's takt_runner_* lines worth showing
    demo_tools.py infer PORT MODEL V1,V2,V3 P,T  one frame through POST /v2/models/MODEL/infer
    demo_tools.py status STATE_DIR               the agent's status.json in plain words

Standard library only; these are the demo's scaffolding, not part of Takt.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, never via a proxy


def free_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def historian(port: str, out: str) -> None:
    sink = Path(out).open("a", encoding="utf-8")  # noqa: SIM115 - open while the server runs, closed below

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(min(int(self.headers.get("Content-Length", 0)), 1 << 16))
            try:
                point = json.loads(body)
            except ValueError:
                point = {"unreadable": body.decode("utf-8", "replace")[:200]}
            sink.write(json.dumps({"path": self.path, **point}) + "\n")
            sink.flush()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()
        sink.close()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with OPENER.open(url, timeout=2) as resp:
            return resp.status, resp.read(1 << 20)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(1 << 20)


def wait_ready(port: str, seconds: str) -> None:
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        try:
            if _get(f"http://127.0.0.1:{port}/v2/health/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"the runner on port {port} did not become ready within {seconds} s")


def points(path: str) -> None:
    lines = [json.loads(ln) for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    scores = [p for p in lines if p["path"].endswith("-score")]
    alarms = [p for p in lines if p["path"].endswith("-alarm")]
    raised = [a for a in alarms if a.get("value") in (True, [[True]], [True])]
    print(f"  the historian received {len(lines)} points: {len(scores)} scores and {len(alarms)} alarm flags")
    for p in scores[:3]:
        print(f"    {p['path']}  {json.dumps({k: p[k] for k in ('value', 'quality', 'model', 'version')})}")
    print(f"  the alarm was raised on {len(raised)} of {len(alarms)} frames "
          "(the bearing knock at 2-3 s of the recording)")  # fmt: skip


def metrics(port: str) -> None:
    _, body = _get(f"http://127.0.0.1:{port}/metrics")
    keep = ("frames_total", "inferences_total", "inference_errors_total", "inference_seconds_count",
            "inference_seconds_sum", "output_sent_total", "output_dropped_total", "source_connected", "ready ")
    for line in body.decode().splitlines():
        if line.startswith("takt_runner_") and any(k in line for k in keep):
            print("  " + line)


def infer(port: str, model: str, vibration: str, process: str) -> None:
    vib, proc = [float(v) for v in vibration.split(",")], [float(v) for v in process.split(",")]
    doc = {"inputs": [{"name": "vibration", "shape": [1, 3], "datatype": "FP32", "data": vib},
                      {"name": "process", "shape": [1, 2], "datatype": "FP32", "data": proc}]}  # fmt: skip
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/{model}/infer", json.dumps(doc).encode(),
                                 {"Content-Type": "application/json"})  # fmt: skip
    with OPENER.open(req, timeout=5) as resp:
        out = json.load(resp)
    got = {o["name"]: o["data"][0] for o in out["outputs"]}
    print(f"  vibration {vib} mm/s, pressure {proc[0]} bar, oil {proc[1]} degC -> "
          f"score {got['score']:.3f}, is_anomaly {str(got['is_anomaly']).lower()}")  # fmt: skip


def status(state_dir: str) -> None:
    doc = json.loads((Path(state_dir) / "status.json").read_text(encoding="utf-8"))
    gate = doc.get("runnerGate") or {}
    if gate:
        print(f"  the {gate['gate']} gate failed ({gate['reason']}): {gate['figure']}")
    for r in doc.get("runners", []):
        state = "ready and serving" if r.get("ready") else f"NOT ready: {r.get('reason')}"
        n, errors = r.get("inferences", 0), r.get("errors", 0)
        print(f"  runner of {r['deployment']}: {state}, {n} inferences, {errors} errors")
    print(f"  the device runs release {doc.get('appliedRelease')} (generation {doc.get('appliedGeneration')}); "
          f"desired: generation {doc.get('desiredGeneration')}")  # fmt: skip


COMMANDS = {"free-port": free_port, "historian": historian, "wait-ready": wait_ready, "points": points,
            "metrics": metrics, "infer": infer, "status": status}  # fmt: skip

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
