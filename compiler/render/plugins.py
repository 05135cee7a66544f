"""Target classes: a folder under targets/ each, or a third-party package in the entry-point
group `takt.targets`. A class module exposes TARGET_CLASS and render(input, templates)."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from ruamel.yaml import YAML

from compiler.render import escape

BUILTIN = ("targets.edge_pc", "targets.it_server", "targets.embedded")
ENTRY_POINT_GROUP = "takt.targets"


@dataclass(frozen=True)
class TargetClass:
    name: str
    module: ModuleType
    folder: Path
    default_profile: dict[str, Any]

    def templates(self) -> ImmutableSandboxedEnvironment:
        """Templates come from the class folder only; spec values are data, never templates."""
        env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(str(self.folder / "templates")),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(
            {
                "systemd_text": escape.systemd_text,
                "systemd_quote": escape.systemd_quote,
                "c_string": escape.c_string,
                "c_identifier": escape.c_identifier,
                "to_json": escape.to_json,
            }
        )
        return env

    @property
    def latency_on_build_host(self) -> bool:
        """Whether the build host's onnxruntime timing stands for this class's devices (False: an MCU)."""
        return bool(getattr(self.module, "LATENCY_ON_BUILD_HOST", True))

    def profile(self, overrides: dict[str, Any] | None) -> dict[str, Any]:
        return _merge(self.default_profile, overrides or {})


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _load(module: ModuleType) -> TargetClass:
    folder = Path(module.__file__).resolve().parent  # type: ignore[arg-type]
    profile_file = folder / "profile.yaml"
    profile = (
        YAML(typ="safe", pure=True).load(profile_file.read_text(encoding="utf-8")) if profile_file.is_file() else {}
    )
    return TargetClass(module.TARGET_CLASS, module, folder, profile or {})


@functools.cache
def target_classes() -> dict[str, TargetClass]:
    classes: dict[str, TargetClass] = {}
    for name in BUILTIN:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        if getattr(module, "TARGET_CLASS", None) and getattr(module, "__file__", None):
            tc = _load(module)
            classes[tc.name] = tc
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        tc = _load(ep.load())
        classes.setdefault(tc.name, tc)
    return classes
