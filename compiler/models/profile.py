"""A Target spec as the runtime a model meets there (one place, for validate, model check and matrix)."""

from __future__ import annotations

from compiler.models.compat import CPU, RuntimeProfile
from compiler.models.tables import installed_table, table_for
from compiler.spec.target import TargetSpec


def _model_in_flash(spec: TargetSpec) -> bool:
    """The target's class links the model into firmware (its plugin says so), so flash bounds it."""
    from compiler.render.plugins import target_classes  # jinja2 and the class packages: only when asked

    tc = target_classes().get(spec.class_ or "")
    return tc is not None and tc.plugin.model_in_flash


def installed_profile() -> RuntimeProfile:
    table = installed_table()
    return RuntimeProfile(table, label=f"installed, {CPU}")


def target_profile(spec: TargetSpec, name: str) -> RuntimeProfile:
    """The profile of a resolved target; its `note` says when its release has no kernel table (TAKT5014)."""
    rt = spec.runtime
    version = rt.onnxruntime if rt and rt.onnxruntime else installed_table().version
    table, note = table_for(version)
    providers = tuple(rt.execution_providers) if rt and rt.execution_providers else (CPU,)
    allowed = frozenset(rt.allowed_operators) if rt and rt.allowed_operators else None
    return RuntimeProfile(
        table=table,
        providers=providers,
        cpu_fallback=not (rt and rt.disable_cpu_fallback),
        max_opset=rt.max_opset if rt else None,
        max_ir_version=rt.max_ir_version if rt else None,
        allowed_operators=allowed,
        quantization=(rt.quantization if rt and rt.quantization else "none"),
        memory=spec.memory,
        flash=spec.flash if _model_in_flash(spec) else None,
        label=f"target {name}",
        note=note or "",
    )
