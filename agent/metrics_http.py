"""`--metrics-port`: serve the last written metrics at /metrics for Prometheus to scrape."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def serve_metrics(metrics: Path, address: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server API names it
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            try:
                body = metrics.read_bytes()
            except OSError:
                body = b"# no reconcile yet\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # the base class names it `format`
            pass

    server = ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
