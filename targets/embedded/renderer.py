"""Render an embedded bundle: the model in ORT format, the operator config of a reduced
onnxruntime build, the model as a C array, a config header and a CMake snippet.

onnxruntime's converter is not byte-reproducible by itself (its flatbuffer layout follows hash
maps whose order depends on memory addresses), so its output is rewritten into one canonical
layout (targets/embedded/ort_canonical.py) in the ORT format version the target's pinned
onnxruntime release reads. The converter still runs in a subprocess with a fixed environment, so
its config file is stable too; that file's comment, which names absolute paths, is replaced.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.render.context import RenderError, RenderInput, spec_json
from compiler.render.escape import c_identifier, to_json
from compiler.spec.types import version_tuple
from targets.embedded.ort_canonical import CanonicalError, for_release
from targets.embedded.profile import EmbeddedProfile

if TYPE_CHECKING:
    from jinja2 import Environment  # the templates arrive built; validate never imports jinja2



def to_ort(model: Path, release: tuple[int, ...] | None = None) -> tuple[bytes, str]:
    """(canonical ORT-format bytes that onnxruntime `release` reads, required_operators.config text)."""
    with tempfile.TemporaryDirectory(prefix="takt-ort-") as tmp:
        work = Path(tmp)
        shutil.copyfile(model, work / "model.onnx")
        cmd = [
            sys.executable,
            "-m",
            "onnxruntime.tools.convert_onnx_models_to_ort",
            "model.onnx",
            "--output_dir",
            "out",
            "--optimization_style",
            "Fixed",
        ]
        setarch = shutil.which("setarch")
        if setarch:
            cmd = [setarch, platform.machine(), "-R", *cmd]
        # A fixed, complete environment: its size shifts memory layout, and so the converter's output.
        env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LC_ALL": "C", "PYTHONHASHSEED": "0"}
        proc = subprocess.run(
            cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
        )
        ort_file, config_file = work / "out" / "model.ort", work / "out" / "model.required_operators.config"
        if proc.returncode != 0 or not ort_file.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RenderError(f"onnxruntime could not convert the model to ORT format: {tail[0][:300]}", "model")
        ops = [ln for ln in config_file.read_text().splitlines() if ln and not ln.startswith("#")]
        config = "# Operators of model/model.ort, for an onnxruntime minimal build (--include_ops_by_config)\n"
        try:
            ort = for_release(ort_file.read_bytes(), release)
        except CanonicalError as exc:
            raise RenderError(f"model.ort: {exc}", "model") from None
        return ort, config + "\n".join(ops) + "\n"


def c_array(symbol: str, data: bytes, alignment: int) -> tuple[str, str]:
    """(model_data.c, model_data.h): the bytes as an aligned const array, 16 per line."""
    rows = ",\n".join("    " + ", ".join(f"0x{b:02x}" for b in data[i : i + 16]) for i in range(0, len(data), 16))
    source = (
        f'#include "model_data.h"\n\n_Alignas({alignment}) const unsigned char {symbol}_data[{len(data)}] = {{\n'
        f"{rows}\n}};\nconst unsigned long {symbol}_size = {len(data)}ul;\n"
    )
    guard = f"{symbol.upper()}_DATA_H"
    header = (
        f"#ifndef {guard}\n#define {guard}\n\n/* The model in ORT format, {len(data)} bytes. */\n"
        f"extern const unsigned char {symbol}_data[{len(data)}];\nextern const unsigned long {symbol}_size;\n\n"
        f"#endif /* {guard} */\n"
    )
    return source, header


def _fields(inp: RenderInput) -> list[dict[str, Any]]:
    out = []
    for b in inp.deployment.spec.bindings:
        src = inp.sources.get(b.source)
        if src is None:
            continue
        by_name = {f.name: f for f in src.spec.fields}
        for name in b.fields:
            f = by_name.get(name)
            if f is None:
                continue
            address = f.address.model_dump(mode="json", by_alias=True, exclude_none=True)
            out.append(
                {
                    "name": name,
                    "source": b.source,
                    "protocol": src.spec.protocol,
                    "address": ";".join(f"{k}={v}" for k, v in sorted(address.items())),
                    "unit": f.unit or "",
                }
            )
    return out


def render(inp: RenderInput, templates: Environment) -> dict[str, bytes]:
    profile = inp.profile
    assert isinstance(profile, EmbeddedProfile)  # the plugin declares it; TargetClass.profile parses it
    symbol = c_identifier(profile.symbol)
    alignment = profile.alignment
    if not isinstance(alignment, int) or alignment not in (4, 8, 16, 32, 64):
        raise RenderError("profile.alignment must be 4, 8, 16, 32 or 64", "profile")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", symbol):
        raise RenderError("profile.symbol must be a C identifier", "profile")
    pinned = inp.target.runtime.onnxruntime if inp.target.runtime else None
    ort, config = to_ort(inp.model_path, version_tuple(pinned) if pinned else None)
    source, header = c_array(symbol, ort, alignment)
    intervals = [s.spec.sampling_interval for s in inp.sources.values() if s.spec.sampling_interval]
    context = {
        "bundle_name": inp.bundle_name,
        "deployment": inp.deployment.metadata.name,
        "model_name": inp.model.metadata.name,
        "model_version": inp.model.spec.version,
        "model_sha256": inp.model_sha256,
        "inputs": inp.model.spec.inputs,
        "fields": _fields(inp),
        "sampling_us": round(min(intervals) * 1e6) if intervals else 0,
    }
    return {
        "model/model.ort": ort,
        "required_operators.config": config.encode(),
        "model_data.c": source.encode(),
        "model_data.h": header.encode(),
        "takt_config.h": templates.get_template("takt_config.h.j2").render(**context).encode(),
        "takt.cmake": templates.get_template("takt.cmake.j2").render(**context).encode(),
        "gateway.json": to_json(_gateway(inp)).encode(),
    }


def _gateway(inp: RenderInput) -> dict[str, Any]:
    """What the MCU cannot do itself: the gateway forwards its predictions to the Deployment's outputs.

    An MCU speaks to its sensors; MQTT, OPC UA, HTTP and Modbus outputs are the gateway's job, so they
    travel to it here instead of being dropped.
    """
    return {
        "apiVersion": "takt/gateway/v1",
        "deployment": inp.deployment.metadata.name,
        "model": {"name": inp.model.metadata.name, "version": inp.model.spec.version, "sha256": inp.model_sha256},
        "outputs": [spec_json(o) for o in inp.deployment.spec.outputs],
    }
