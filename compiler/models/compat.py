"""Can this model run on that runtime? Opset, IR, every operator's kernel, minimal builds, memory,
quantization, and the declared signature. Problems are values; callers place them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from compiler.codes import rule
from compiler.diagnostics import Severity
from compiler.models.inspect import SPEC_TO_ONNX, Formal, ModelInfo, NodeUse, TensorInfo
from compiler.models.tables import KernelTable
from compiler.spec.model import Tensor

CPU = "CPUExecutionProvider"
# Handled by onnxruntime's graph loader, not by a kernel: constants become initializers.
GRAPH_LEVEL_OPS = {("ai.onnx", "Constant")}
QUANTIZED_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "DynamicQuantizeLinear",
    "QLinearAdd",
    "QLinearMul",
    "QGemm",
}


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    subject: str = ""  # the operator or tensor at fault

    @property
    def severity(self) -> Severity:
        """The rule table's, never the call site's."""
        return rule(self.code).severity

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity.label, "message": self.message, "subject": self.subject}


@dataclass(frozen=True)
class RuntimeProfile:
    """What a target offers a model: a kernel table and the settings that narrow it."""

    table: KernelTable
    providers: tuple[str, ...] = (CPU,)
    cpu_fallback: bool = True
    max_opset: int | None = None
    max_ir_version: int | None = None
    allowed_operators: frozenset[str] | None = None
    quantization: str = "none"
    memory: int | None = None
    flash: int | None = None
    label: str = ""

    @property
    def effective_providers(self) -> tuple[str, ...]:
        if self.cpu_fallback and CPU not in self.providers:
            return (*self.providers, CPU)
        return self.providers


def _type_ok(node: NodeUse, constraints: dict[str, list[str]], formal: Formal | None, provider: str) -> bool:
    if formal is None:
        return True
    for params, actual in ((formal[0], node.input_types), (formal[1], node.output_types)):
        for param, typ in zip(params, actual, strict=False):
            allowed = constraints.get(param)
            if allowed is None or typ is None or typ in allowed:
                continue
            # On the CPU provider onnxruntime wraps float16 nodes in Casts to a float kernel.
            if provider == CPU and typ == "tensor(float16)" and "tensor(float)" in allowed:
                continue
            return False
    return True


def find_kernel(node: NodeUse, table: KernelTable, providers: Iterable[str]) -> tuple[str | None, str]:
    """(provider, '') when a kernel runs the node, else (None, why not)."""
    if (node.domain, node.op_type) in GRAPH_LEVEL_OPS:
        return "graph", ""
    version = node.since_version or node.opset or 0
    formal = node.formal  # read from the ONNX schema when the model was inspected
    found_op = False
    for provider in providers:
        ranges = table.kernels.get(provider, {}).get(node.domain, {}).get(node.op_type)
        if not ranges:
            continue
        found_op = True
        for start, end, constraints in ranges:
            if start <= version <= end and _type_ok(node, constraints, formal, provider):
                return provider, ""
    since_fn = table.functions.get(node.domain, {}).get(node.op_type, [])
    if not found_op and any(v <= version for v in since_fn):
        # Inlining of an ONNX function body is counted on only for operators without any kernel:
        # onnxruntime's bundled onnx may lack the bodies that newer onnx releases added to old versions.
        return "function", ""
    if not found_op:
        return None, "no kernel implements this operator"
    typed = ", ".join(t for t in node.input_types if t) or "these types"
    return None, f"no kernel for version {version} with inputs {typed}"


def check_runtime(info: ModelInfo, rt: RuntimeProfile) -> list[Problem]:
    problems: list[Problem] = []
    t = rt.table
    where = f"onnxruntime {t.version}" + (f" ({rt.label})" if rt.label else "")
    max_ir = (
        min(x for x in (t.max_ir_version, rt.max_ir_version) if x is not None)
        if (t.max_ir_version or rt.max_ir_version)
        else None
    )
    if max_ir is not None and info.ir_version > max_ir:
        problems.append(Problem("TAKT5005", f"IR version {info.ir_version} is newer than {where} reads (<= {max_ir})"))
    for domain, version in sorted(info.opsets.items()):
        if domain not in t.max_opset:
            if any(n.domain == domain for n in info.nodes):
                problems.append(
                    Problem(
                        "TAKT5015",
                        f"operator domain {domain!r} is not part of {where}; it needs a custom-op library",
                        subject=domain,
                    )
                )
            continue
        limit = t.max_opset[domain]
        if domain == "ai.onnx" and rt.max_opset is not None:
            limit = min(limit, rt.max_opset)
        if version > limit:
            problems.append(
                Problem(
                    "TAKT5006", f"opset {domain} {version} is newer than {where} supports (<= {limit})", subject=domain
                )
            )
    unsupported = {p for p in rt.effective_providers if p not in t.kernels}
    if unsupported:
        problems.append(
            Problem(
                "TAKT5014",
                f"no kernel table for {', '.join(sorted(unsupported))} in "
                f"{where}; its operators were checked against the other providers only",
            )
        )
    providers = [p for p in rt.effective_providers if p in t.kernels]
    for node in sorted(info.nodes, key=lambda n: (n.domain, n.op_type)):
        if node.domain not in t.max_opset:
            continue  # reported once per domain above
        provider, why = find_kernel(node, t, providers)
        name = node.op_type if node.domain == "ai.onnx" else f"{node.domain}:{node.op_type}"
        if provider is None:
            problems.append(
                Problem(
                    "TAKT5007",
                    f"operator {name} cannot run on {'/'.join(providers) or 'no provider'} of {where}: {why}",
                    subject=name,
                )
            )
        if node.op_type == "StringNormalizer":
            problems.append(
                Problem(
                    "TAKT5016",
                    "StringNormalizer needs its locale (default en_US.UTF-8) installed on the device",
                    subject=name,
                )
            )
        if (
            rt.allowed_operators is not None
            and name not in rt.allowed_operators
            and node.op_type not in rt.allowed_operators
        ):
            problems.append(Problem("TAKT5008", f"operator {name} is not in the target's minimal build", subject=name))
    need = info.file_bytes + info.activation_bytes
    if rt.memory is not None and need > rt.memory:
        problems.append(
            Problem("TAKT5012", f"model needs about {need:,} bytes (file + activations), the target has {rt.memory:,}")
        )
    if rt.flash is not None and info.file_bytes > rt.flash:
        problems.append(
            Problem("TAKT5012", f"model file of {info.file_bytes:,} bytes exceeds {rt.flash:,} bytes of flash")
        )
    if rt.quantization in ("int8", "uint8") and not any(n.op_type in QUANTIZED_OPS for n in info.nodes):
        problems.append(
            Problem(
                "TAKT5013", f"the target requires {rt.quantization} quantization; the model has no quantized operators"
            )
        )
    if rt.quantization == "fp16" and not any("float16" in (t or "") for n in info.nodes for t in n.input_types):
        problems.append(Problem("TAKT5013", "the target requires fp16; the model computes in no float16 tensor"))
    return problems


def _dims_match(declared: list[int | str], real: tuple[int | str | None, ...]) -> str | None:
    if len(declared) != len(real):
        return f"rank {len(declared)} declared, {len(real)} in the model"
    for i, (d, r) in enumerate(zip(declared, real, strict=True)):
        if isinstance(d, int) and isinstance(r, int) and d != r:
            return f"dimension {i} is {d} in the spec, {r} in the model"
        if isinstance(d, str) and isinstance(r, int):
            return f"dimension {i} is symbolic ({d}) in the spec but fixed to {r} in the model"
    return None


def check_signature(
    declared: Sequence[Tensor], real: tuple[TensorInfo, ...], side: str
) -> list[tuple[int | None, Problem]]:
    """Declared spec tensors vs the model's; each problem with the index of the spec tensor at fault."""
    out: list[tuple[int | None, Problem]] = []
    real_by_name = {t.name: t for t in real}
    names = {t.name for t in declared}
    for i, spec in enumerate(declared):
        actual = real_by_name.get(spec.name)
        if actual is None:
            have = ", ".join(sorted(real_by_name)) or "none"
            out.append(
                (i, Problem("TAKT5009", f"the model has no {side} {spec.name!r} (it has: {have})", subject=spec.name))
            )
            continue
        want = SPEC_TO_ONNX.get(spec.dtype)
        if actual.elem_type is not None and want != actual.elem_type:
            out.append(
                (
                    i,
                    Problem(
                        "TAKT5010",
                        f"{side} {spec.name!r} is {actual.elem_type} in the model, {spec.dtype} in the spec",
                        subject=spec.name,
                    ),
                )
            )
        if actual.shape is not None:
            why = _dims_match(spec.shape, actual.shape)
            if why:
                out.append((i, Problem("TAKT5011", f"{side} {spec.name!r}: {why}", subject=spec.name)))
    for t in real:
        if t.name not in names:
            out.append(
                (
                    None,
                    Problem("TAKT5009", f"the model's {side} {t.name!r} is not declared in the spec", subject=t.name),
                )
            )
    return out
