"""Can this model run on that runtime? Opset, IR, every operator's kernel, minimal builds, memory,
quantization, and the declared signature. Problems are values; callers place them."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from compiler.codes import rule
from compiler.diagnostics import Severity
from compiler.models.inspect import SPEC_TO_ONNX, Formal, ModelInfo, NodeUse, TensorInfo
from compiler.models.tables import KernelTable
from compiler.spec.model import Tensor
from compiler.validate.checks import Check, run_checks

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
    note: str = ""
    """Why the kernel table only approximates the target's release (TAKT5014); empty when it is its own."""

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


@dataclass(frozen=True)
class Fit:
    """The subject of the runtime checks: one inspected model on one target's runtime."""

    info: ModelInfo
    rt: RuntimeProfile

    @property
    def where(self) -> str:
        return f"onnxruntime {self.rt.table.version}" + (f" ({self.rt.label})" if self.rt.label else "")

    @property
    def providers(self) -> list[str]:
        """The effective providers that have a kernel table (the others are TAKT5029)."""
        return [p for p in self.rt.effective_providers if p in self.rt.table.kernels]

    @functools.cached_property
    def named_nodes(self) -> tuple[tuple[NodeUse, str], ...]:
        """Each node of a domain the runtime knows (unknown domains are TAKT5015), with its display name;
        sorted once for the node checks that share it."""
        return tuple(
            (node, node.op_type if node.domain == "ai.onnx" else f"{node.domain}:{node.op_type}")
            for node in sorted(self.info.nodes, key=lambda n: (n.domain, n.op_type))
            if node.domain in self.rt.table.max_opset
        )


def ir_version_readable(fit: Fit) -> Iterator[Problem]:
    """TAKT5005: the runtime reads the model's IR version (its table's and the target's limit)."""
    t, rt = fit.rt.table, fit.rt
    limits = [x for x in (t.max_ir_version, rt.max_ir_version) if x is not None]
    max_ir = min(limits) if (t.max_ir_version or rt.max_ir_version) else None
    if max_ir is not None and fit.info.ir_version > max_ir:
        yield Problem("TAKT5005", f"IR version {fit.info.ir_version} is newer than {fit.where} reads (<= {max_ir})")


def domains_known(fit: Fit) -> Iterator[Problem]:
    """TAKT5015: every operator domain a node uses is one the runtime ships (else a custom-op library)."""
    for domain in sorted(fit.info.opsets):
        if domain not in fit.rt.table.max_opset and any(n.domain == domain for n in fit.info.nodes):
            yield Problem(
                "TAKT5015",
                f"operator domain {domain!r} is not part of {fit.where}; it needs a custom-op library",
                subject=domain,
            )


def opsets_supported(fit: Fit) -> Iterator[Problem]:
    """TAKT5006: each imported opset is one the runtime (and the target's maxOpset) supports."""
    t = fit.rt.table
    for domain, version in sorted(fit.info.opsets.items()):
        if domain not in t.max_opset:
            continue
        limit = t.max_opset[domain]
        if domain == "ai.onnx" and fit.rt.max_opset is not None:
            limit = min(limit, fit.rt.max_opset)
        if version > limit:
            yield Problem(
                "TAKT5006", f"opset {domain} {version} is newer than {fit.where} supports (<= {limit})", subject=domain
            )


def provider_tables_shipped(fit: Fit) -> Iterator[Problem]:
    """TAKT5029: every execution provider has a kernel table, or its operators are checked without it."""
    unsupported = {p for p in fit.rt.effective_providers if p not in fit.rt.table.kernels}
    if unsupported:
        yield Problem(
            "TAKT5029",
            f"no kernel table for {', '.join(sorted(unsupported))} in "
            f"{fit.where}; its operators were checked against the other providers only",
        )


def operators_have_kernels(fit: Fit) -> Iterator[Problem]:
    """TAKT5007: a kernel of the target's providers implements each node (version and types)."""
    providers = fit.providers
    for node, name in fit.named_nodes:
        provider, why = find_kernel(node, fit.rt.table, providers)
        if provider is None:
            yield Problem(
                "TAKT5007",
                f"operator {name} cannot run on {'/'.join(providers) or 'no provider'} of {fit.where}: {why}",
                subject=name,
            )


def operators_environment_free(fit: Fit) -> Iterator[Problem]:
    """TAKT5016: operators whose result depends on what the device has installed."""
    for node, name in fit.named_nodes:
        if node.op_type == "StringNormalizer":
            yield Problem(
                "TAKT5016",
                "StringNormalizer needs its locale (default en_US.UTF-8) installed on the device",
                subject=name,
            )


def operators_in_minimal_build(fit: Fit) -> Iterator[Problem]:
    """TAKT5008: with allowedOperators (a minimal build), every node's operator is in it."""
    allowed = fit.rt.allowed_operators
    if allowed is None:
        return
    for node, name in fit.named_nodes:
        if name not in allowed and node.op_type not in allowed:
            yield Problem("TAKT5008", f"operator {name} is not in the target's minimal build", subject=name)


def fits_memory(fit: Fit) -> Iterator[Problem]:
    """TAKT5012: file plus activations fit the target's memory."""
    need = fit.info.file_bytes + fit.info.activation_bytes
    if fit.rt.memory is not None and need > fit.rt.memory:
        yield Problem(
            "TAKT5012", f"model needs about {need:,} bytes (file + activations), the target has {fit.rt.memory:,}"
        )


def fits_flash(fit: Fit) -> Iterator[Problem]:
    """TAKT5030: a model linked into firmware fits the target's flash."""
    if fit.rt.flash is not None and fit.info.file_bytes > fit.rt.flash:
        yield Problem(
            "TAKT5030", f"model file of {fit.info.file_bytes:,} bytes exceeds {fit.rt.flash:,} bytes of flash"
        )


def quantized_as_required(fit: Fit) -> Iterator[Problem]:
    """TAKT5013: a target that requires int8/uint8 or fp16 gets a model computing so."""
    q, nodes = fit.rt.quantization, fit.info.nodes
    if q in ("int8", "uint8") and not any(n.op_type in QUANTIZED_OPS for n in nodes):
        yield Problem("TAKT5013", f"the target requires {q} quantization; the model has no quantized operators")
    if q == "fp16" and not any("float16" in (t or "") for n in nodes for t in n.input_types):
        yield Problem("TAKT5013", "the target requires fp16; the model computes in no float16 tensor")


def kernel_table_shipped(fit: Fit) -> Iterator[Problem]:
    """TAKT5014: the target's onnxruntime release has a shipped kernel table (else the nearest one stands in)."""
    if fit.rt.note:
        yield Problem("TAKT5014", fit.rt.note)


RUNTIME_CHECKS: tuple[Check[Fit, Problem], ...] = (
    Check("TAKT5005", ir_version_readable),
    Check("TAKT5015", domains_known),
    Check("TAKT5006", opsets_supported),
    Check("TAKT5029", provider_tables_shipped),
    Check("TAKT5007", operators_have_kernels),
    Check("TAKT5016", operators_environment_free),
    Check("TAKT5008", operators_in_minimal_build),
    Check("TAKT5012", fits_memory),
    Check("TAKT5030", fits_flash),
    Check("TAKT5013", quantized_as_required),
    Check("TAKT5014", kernel_table_shipped),
)


def onnx_valid(info: ModelInfo) -> Iterator[Problem]:
    """TAKT5004: onnx.checker and type inference accept the model."""
    if info.checker_error:
        yield Problem("TAKT5004", f"not a valid ONNX model: {info.checker_error}")


MODEL_CHECKS: tuple[Check[ModelInfo, Problem], ...] = (Check("TAKT5004", onnx_valid),)


def check_model(info: ModelInfo) -> list[Problem]:
    """What is wrong with the model on any runtime."""
    return run_checks(MODEL_CHECKS, info)


def check_runtime(info: ModelInfo, rt: RuntimeProfile) -> list[Problem]:
    """Every runtime problem of `info` on `rt`, check by check (validate, model check and matrix share it)."""
    return run_checks(RUNTIME_CHECKS, Fit(info, rt))


def _dims_match(declared: list[int | str], real: tuple[int | str | None, ...]) -> str | None:
    if len(declared) != len(real):
        return f"rank {len(declared)} declared, {len(real)} in the model"
    for i, (d, r) in enumerate(zip(declared, real, strict=True)):
        if isinstance(d, int) and isinstance(r, int) and d != r:
            return f"dimension {i} is {d} in the spec, {r} in the model"
        if isinstance(d, str) and isinstance(r, int):
            return f"dimension {i} is symbolic ({d}) in the spec but fixed to {r} in the model"
    return None


@dataclass(frozen=True)
class Signature:
    """The subject of the signature checks: the spec's tensors of one side against the model's."""

    declared: Sequence[Tensor]
    real: tuple[TensorInfo, ...]
    side: str  # input or output

    def pairs(self) -> Iterator[tuple[int, Tensor, TensorInfo]]:
        """Each declared tensor the model has, with its index in the spec."""
        real_by_name = {t.name: t for t in self.real}
        for i, spec in enumerate(self.declared):
            if spec.name in real_by_name:
                yield i, spec, real_by_name[spec.name]


Placed = tuple[int | None, Problem]  # the index of the spec tensor at fault (None: the side's key)


def declared_tensors_exist(sig: Signature) -> Iterator[Placed]:
    """TAKT5009: every tensor the spec declares is one the model has."""
    names = sorted(t.name for t in sig.real)
    for i, spec in enumerate(sig.declared):
        if spec.name not in names:
            have = ", ".join(names) or "none"
            yield (
                i,
                Problem("TAKT5009", f"the model has no {sig.side} {spec.name!r} (it has: {have})", subject=spec.name),
            )


def dtypes_match(sig: Signature) -> Iterator[Placed]:
    """TAKT5010: a declared tensor's dtype is the model's."""
    for i, spec, actual in sig.pairs():
        if actual.elem_type is not None and SPEC_TO_ONNX.get(spec.dtype) != actual.elem_type:
            yield (
                i,
                Problem(
                    "TAKT5010",
                    f"{sig.side} {spec.name!r} is {actual.elem_type} in the model, {spec.dtype} in the spec",
                    subject=spec.name,
                ),
            )


def shapes_match(sig: Signature) -> Iterator[Placed]:
    """TAKT5011: a declared tensor's rank and fixed dimensions are the model's."""
    for i, spec, actual in sig.pairs():
        why = _dims_match(spec.shape, actual.shape) if actual.shape is not None else None
        if why:
            yield i, Problem("TAKT5011", f"{sig.side} {spec.name!r}: {why}", subject=spec.name)


def model_tensors_declared(sig: Signature) -> Iterator[Placed]:
    """TAKT5032: every tensor of the model is declared in the spec."""
    names = {t.name for t in sig.declared}
    for t in sig.real:
        if t.name not in names:
            yield (
                None,
                Problem("TAKT5032", f"the model's {sig.side} {t.name!r} is not declared in the spec", subject=t.name),
            )


SIGNATURE_CHECKS: tuple[Check[Signature, Placed], ...] = (
    Check("TAKT5009", declared_tensors_exist),
    Check("TAKT5010", dtypes_match),
    Check("TAKT5011", shapes_match),
    Check("TAKT5032", model_tensors_declared),
)


def check_signature(declared: Sequence[Tensor], real: tuple[TensorInfo, ...], side: str) -> list[Placed]:
    """Declared spec tensors vs the model's; each problem with the index of the spec tensor at fault."""
    return run_checks(SIGNATURE_CHECKS, Signature(declared, real, side))
