"""The embedded class's own rules: a microcontroller, its flash, a reduced onnxruntime."""

from __future__ import annotations

from collections.abc import Iterator

from compiler.diagnostics import Diagnostic
from compiler.render.platforms import MICROCONTROLLER, platform_fits
from compiler.spec.target import TargetSpec
from compiler.validate.document import SpecDocument


def validate(doc: SpecDocument, spec: TargetSpec) -> Iterator[Diagnostic]:
    yield from flash_declared(doc, spec)
    yield from platform_fits(doc, spec, MICROCONTROLLER)
    yield from minimal_build(doc, spec)


def flash_declared(doc: SpecDocument, spec: TargetSpec) -> Iterator[Diagnostic]:
    """TAKT4030: the model is linked into flash, so its size must be known."""
    if spec.flash is None:
        yield doc.diag("TAKT4030", "embedded targets declare their flash size", ("spec",), key=True)


def minimal_build(doc: SpecDocument, spec: TargetSpec) -> Iterator[Diagnostic]:
    """TAKT4031: a full onnxruntime does not fit a microcontroller."""
    rt = spec.runtime
    if not (rt and (rt.minimal_build or rt.allowed_operators)):
        yield doc.diag(
            "TAKT4031",
            "embedded targets use a minimal onnxruntime build",
            ("spec", "runtime"),
            hint="set runtime.minimalBuild: true (operators are then taken from the models)",
        )
