"""One HTTP port: KServe V2 health, model metadata and inference (Open Inference Protocol subset),
Kubernetes-style /healthz and /readyz, and Prometheus /metrics.

Live never depends on the PLCs (the loop answers and the model is loaded); ready also needs every
bound source connected and fresh. Bodies are bounded; a malformed request gets a 400 with the
reason as {"error": …}, never a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from compiler.bundle.readiness import Readiness
from runner.model import LoadedModel

MAX_BODY = 8 << 20
MAX_ELEMENTS = 1 << 22
V2_TYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "string": "BYTES",
}
NUMPY_OF_V2 = {v: np.dtype(k if k != "string" else object) for k, v in V2_TYPES.items() if k != "string"}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _shape(dims: list[int | str]) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in dims]


class Api:
    def __init__(self, model: LoadedModel, tensors: dict[str, Any], outputs: dict[str, Any],
                 ready: Callable[[], Readiness], metrics: Any, refresh: Callable[[], None]) -> None:  # fmt: skip
        self.model, self.tensors, self.out_tensors, self.ready, self.metrics = model, tensors, outputs, ready, metrics
        self.refresh = refresh  # brings gauges computed on demand (drift, readiness) up to date

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/v2/health/live", self.live)
        app.router.add_get("/healthz", self.live)
        app.router.add_get("/v2/health/ready", self.readiness)
        app.router.add_get("/readyz", self.readiness)
        app.router.add_get("/v2/models/{name}", self.metadata)
        app.router.add_get("/v2/models/{name}/ready", self.model_ready)
        app.router.add_post("/v2/models/{name}/infer", self.infer)
        app.router.add_get("/metrics", self.prometheus)
        return app

    async def live(self, request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def readiness(self, request: web.Request) -> web.Response:
        state = self.ready()  # names each source: unreachable or stale (the plant) vs refused (the release)
        return web.json_response(state.to_json(), status=200 if state.ready else 503)

    async def model_ready(self, request: web.Request) -> web.Response:
        if request.match_info["name"] != self.model.name:
            return _error(404, f"no model {request.match_info['name'][:64]!r}")
        return web.json_response({"name": self.model.name, "ready": True})

    async def metadata(self, request: web.Request) -> web.Response:
        if request.match_info["name"] != self.model.name:
            return _error(404, f"no model {request.match_info['name'][:64]!r}")

        def tensor(t: Any) -> dict[str, Any]:  # a contract Tensor
            return {"name": t.name, "datatype": V2_TYPES[t.dtype], "shape": _shape(list(t.shape))}

        return web.json_response(
            {
                "name": self.model.name,
                "versions": [self.model.version],
                "platform": "onnxruntime_onnx",
                "inputs": [tensor(t) for t in self.tensors.values()],
                "outputs": [tensor(t) for t in self.out_tensors.values()],
            }
        )

    async def infer(self, request: web.Request) -> web.Response:
        if request.match_info["name"] != self.model.name:
            return _error(404, f"no model {request.match_info['name'][:64]!r}")
        try:
            body = await request.read()
            doc = json.loads(body)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body over {MAX_BODY} bytes")
        except (ValueError, RecursionError):
            return _error(400, "the body is not JSON")
        try:
            feeds = self._feeds(doc)
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            out = self.model.run(feeds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime refusing the tensors is the client's 400
            return _error(400, f"inference failed: {str(exc).splitlines()[0][:200]}")
        wanted = [o.get("name") for o in doc.get("outputs", []) if isinstance(o, dict)] or list(out)
        unknown = [w for w in wanted if not isinstance(w, str) or w not in out]
        if unknown:
            return _error(400, f"unknown output(s) {unknown[:5]}")
        names = [w for w in wanted if isinstance(w, str)]  # all of them: none is unknown
        return web.json_response(
            {
                "model_name": self.model.name,
                "model_version": self.model.version,
                "id": doc.get("id") if isinstance(doc.get("id"), str) else None,
                "outputs": [
                    {
                        "name": n,
                        "datatype": V2_TYPES.get(str(out[n].dtype), "BYTES"),
                        "shape": list(out[n].shape),
                        "data": out[n].reshape(-1).tolist(),
                    }
                    for n in names
                ],
            },
            dumps=lambda o: json.dumps(o, allow_nan=True),
        )

    def _feeds(self, doc: Any) -> dict[str, np.ndarray]:
        if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
            raise ValueError("the body needs an inputs list")
        feeds: dict[str, np.ndarray] = {}
        for i, item in enumerate(doc["inputs"]):
            if not isinstance(item, dict):
                raise ValueError(f"inputs[{i}] is not an object")
            name, shape, datatype, data = (item.get(k) for k in ("name", "shape", "datatype", "data"))
            tensor = self.tensors.get(name) if isinstance(name, str) else None
            if tensor is None or not isinstance(name, str):
                raise ValueError(f"inputs[{i}]: {str(name)[:64]!r} is not a model input")
            if datatype != V2_TYPES[tensor.dtype]:
                raise ValueError(f"inputs[{i}]: datatype must be {V2_TYPES[tensor.dtype]}, not {str(datatype)[:16]}")
            if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                      for d in shape):  # fmt: skip
                raise ValueError(f"inputs[{i}]: shape must be a list of non-negative integers")
            if len(shape) != len(tensor.shape) or any(
                isinstance(want, int) and got != want for got, want in zip(shape, tensor.shape, strict=True)
            ):
                raise ValueError(f"inputs[{i}]: shape {shape} does not fit {list(tensor.shape)}")
            size = math.prod(shape)
            if size > MAX_ELEMENTS:
                raise ValueError(f"inputs[{i}]: more than {MAX_ELEMENTS} elements")
            try:
                arr = np.asarray(data, dtype=NUMPY_OF_V2[datatype])
            except (ValueError, TypeError, OverflowError, KeyError):
                raise ValueError(f"inputs[{i}]: data are not {datatype} values") from None
            if arr.size != size:
                raise ValueError(f"inputs[{i}]: {arr.size} values for shape {shape}")
            feeds[name] = arr.reshape(shape)
        missing = [n for n in self.tensors if n not in feeds]
        if missing:
            raise ValueError(f"missing input(s) {missing}")
        return feeds

    async def prometheus(self, request: web.Request) -> web.Response:
        self.refresh()
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
