"""Platform rules of the target classes: the os and architecture each class runs on (TAKT4015).

One check for every class: a class names its `Platform`, and `platform_fits` reports a target
that does not suit it (a class's `validate` hook composes it with the class's own rules).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from compiler.diagnostics import Diagnostic
from compiler.spec.target import TargetSpec
from compiler.validate.document import SpecDocument

HOST_OS = ("linux", "windows")
APPLICATION_ARCHS = ("x86_64", "aarch64", "armv7", "riscv64")
MCU_OS = ("none", "zephyr", "freertos")


@dataclass(frozen=True)
class Platform:
    os: tuple[str, ...]
    os_words: str  # "run linux or windows", as the message says it
    archs: tuple[str, ...] | None = None  # None: any architecture
    arch_words: str = ""


APPLICATION_HOST = Platform(HOST_OS, "run linux or windows", APPLICATION_ARCHS, "need an application processor")
"""A class whose runner is a process: an operating system and an application processor."""
MICROCONTROLLER = Platform(MCU_OS, "run bare metal, zephyr or freertos")
"""Bare metal or an RTOS, never a host operating system."""


def platform_fits(doc: SpecDocument, spec: TargetSpec, platform: Platform) -> Iterator[Diagnostic]:
    """TAKT4015: the target's os and architecture suit its class's platform."""
    if spec.os not in platform.os:
        yield doc.diag("TAKT4015", f"{spec.class_} targets {platform.os_words}, not {spec.os}", ("spec", "os"))
    if platform.archs is not None and spec.arch not in platform.archs:
        yield doc.diag("TAKT4015", f"{spec.class_} targets {platform.arch_words}, not {spec.arch}", ("spec", "arch"))


def application_host(doc: SpecDocument, spec: TargetSpec) -> Iterator[Diagnostic]:
    """The `validate` hook of the classes that run a process (edge-pc, it-server)."""
    return platform_fits(doc, spec, APPLICATION_HOST)
