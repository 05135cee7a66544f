"""The model: its bytes checked against the contract's sha256, then one onnxruntime session.

Loaded from the checked bytes (never re-read from disk), with the Deployment's CPU share as its
thread count and onnxruntime's telemetry off.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compiler.bundle import runner as contract
from runner.errors import StartError

MAX_MODEL_BYTES = 4 << 30


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    session: Any  # onnxruntime.InferenceSession
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    threads: int

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds), strict=True))


def threads_for(resources: contract.Resources) -> int:
    """Whole cores of the Deployment's CPU share, at least one."""
    return max(1, math.floor(resources.cpu)) if resources.cpu else 1


def load_model(config: contract.RunnerConfig, base: Path) -> LoadedModel:
    import onnxruntime as ort

    path = Path(config.model.file)
    path = path if path.is_absolute() else base / path
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_MODEL_BYTES + 1)
    except OSError as exc:
        raise StartError("model.file", f"cannot read {path} ({exc.strerror or exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != config.model.sha256:
        raise StartError("model.sha256", f"{path} has sha256 {digest}, the contract says {config.model.sha256}")
    if hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    threads = threads_for(config.resources)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime refusing the bytes is a start error with its reason
        raise StartError("model.file", f"onnxruntime cannot load it: {str(exc).splitlines()[0][:200]}") from None
    names = tuple(i.name for i in session.get_inputs())
    declared = {t.name for t in config.model.inputs}
    if set(names) != declared:
        raise StartError("model.inputs", f"the model has inputs {sorted(names)}, the contract {sorted(declared)}")
    outputs = tuple(o.name for o in session.get_outputs())
    return LoadedModel(config.model.name, config.model.version, session, names, outputs, threads)
