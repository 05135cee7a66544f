"""Dump the kernel registry of the installed onnxruntime as a takt kernel table (JSON on stdout).

Standalone on purpose: run it with the Python of a virtualenv that holds the onnxruntime release
to describe, e.g.
    python -m venv /tmp/ort && /tmp/ort/bin/pip install onnxruntime==1.20.1 onnx
    /tmp/ort/bin/python compiler/models/kernels/generate_table.py > compiler/models/kernels/ort-1.20.json
A target that pins that release is then checked against it without installing it.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any

import onnx
import onnxruntime
from onnxruntime.capi import onnxruntime_pybind11_state as C

UNBOUNDED = 2147483647


def _domain(d: str) -> str:
    return d or "ai.onnx"


def build_table() -> dict[str, Any]:
    """The table of the onnxruntime importable here (used live for the installed release too)."""
    max_opset: dict[str, int] = defaultdict(int)
    functions: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    onnx_functions = {
        (s.domain, s.name, s.since_version)
        for s in onnx.defs.get_all_schemas_with_history()
        # onnx's stub of OpSchema lacks these two properties, which the C++ binding has
        if s.has_function or s.has_context_dependent_function  # type: ignore[attr-defined]
    }
    for schema in C.get_all_operator_schema():
        dom = _domain(schema.domain)
        max_opset[dom] = max(max_opset[dom], schema.since_version)
        if (schema.domain, schema.name, schema.since_version) in onnx_functions:
            # ORT inlines an ONNX function body when no kernel implements the op itself
            functions[dom][schema.name].append(schema.since_version)
    core = max_opset["ai.onnx"]
    irs = [ir for _, ir, op, *_ in onnx.helper.VERSION_TABLE if op == core]
    merged: dict[str, Any] = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    for k in C.get_all_opkernel_def():
        start, end = k.version_range
        slot = merged[k.provider][_domain(k.domain)][k.op_name].setdefault((start, min(end, UNBOUNDED)), {})
        for name, types in k.type_constraints.items():
            slot.setdefault(name, set()).update(types)
    kernels = {
        provider: {
            dom: {
                op: [[s, e, {n: sorted(t) for n, t in sorted(c.items())}] for (s, e), c in sorted(ranges.items())]
                for op, ranges in sorted(ops.items())
            }
            for dom, ops in sorted(domains.items())
        }
        for provider, domains in sorted(merged.items())
    }
    return {
        "onnxruntime": onnxruntime.__version__,
        "max_ir_version": max(irs) if irs else None,
        "max_opset": dict(sorted(max_opset.items())),
        "functions": {d: {op: sorted(v) for op, v in sorted(ops.items())} for d, ops in sorted(functions.items())},
        "kernels": kernels,
    }


def main() -> None:
    json.dump(build_table(), sys.stdout, indent=None, separators=(",", ":"), sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
