"""Platform rules several target classes share (a class's `validate` hook composes them)."""

from __future__ import annotations

from collections.abc import Iterator

from compiler.diagnostics import Diagnostic
from compiler.spec.target import TargetSpec
from compiler.validate.document import SpecDocument

HOST_OS = ("linux", "windows")
APPLICATION_ARCHS = ("x86_64", "aarch64", "armv7", "riscv64")


def application_host(doc: SpecDocument, spec: TargetSpec) -> Iterator[Diagnostic]:
    """TAKT4015: a class whose runner is a process needs an operating system and an application processor."""
    if spec.os not in HOST_OS:
        yield doc.diag("TAKT4015", f"{spec.class_} targets run linux or windows, not {spec.os}", ("spec", "os"))
    if spec.arch not in APPLICATION_ARCHS:
        yield doc.diag(
            "TAKT4015", f"{spec.class_} targets need an application processor, not {spec.arch}", ("spec", "arch")
        )
