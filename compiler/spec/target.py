"""`Target`: a hardware/software profile; a device runs exactly one."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from compiler.spec.types import Bytes, Metadata, Name, SpecModel, Version


class Accelerator(SpecModel):
    type: Literal["gpu", "npu", "tpu", "vpu", "dsp"]
    vendor: str | None = None
    model: str | None = None
    memory: Bytes | None = None


class Runtime(SpecModel):
    onnxruntime: Version | None = None
    """The onnxruntime release on the device, e.g. "1.20"; checks use that release's tables."""
    execution_providers: list[str] | None = None
    max_opset: int | None = Field(default=None, ge=1, le=100)
    max_ir_version: int | None = Field(default=None, ge=1, le=100)
    allowed_operators: list[str] | None = None
    """Operators of a minimal (reduced) build, as `Op` or `domain:Op`."""
    minimal_build: bool | None = None
    quantization: Literal["none", "int8", "uint8", "fp16"] | None = None
    """Precision the target requires."""
    disable_cpu_fallback: bool | None = None
    """A kernel missing on the accelerator is an error, not a silent fallback to the CPU."""


class TargetSpec(SpecModel):
    class_: Name | None = Field(default=None, alias="class")
    """Target class: a folder of `targets/` (it-server, edge-pc, embedded) or an installed package of the
    entry-point group `takt.targets`; checked against the classes installed where takt runs (TAKT4034)."""
    extends: Name | None = None
    """Another Target whose values this one inherits and overrides."""
    arch: Literal["x86_64", "aarch64", "armv7", "riscv64", "cortex-m4", "cortex-m7", "cortex-m33", "xtensa"] | None = (
        None
    )
    os: Literal["linux", "windows", "zephyr", "freertos", "none"] | None = None
    memory: Bytes | None = None
    flash: Bytes | None = None
    storage: Bytes | None = None
    accelerators: list[Accelerator] | None = None
    runtime: Runtime | None = None
    profile: dict[str, Any] | None = None
    """Options of the target class (container image, unit settings, toolchain)."""


class Target(SpecModel):
    api_version: Literal["takt/v1"]
    kind: Literal["Target"]
    metadata: Metadata
    spec: TargetSpec
