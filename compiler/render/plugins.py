"""The target-class plugin contract: a folder under targets/ each, or an installed package in the
entry-point group `takt.targets`.

A class package exposes `PLUGIN`, an object satisfying `TargetClassPlugin` (pre-commit's
`Language` protocol is the model: a module per language, one typed surface, nothing else); the
entry point names the package (`jetson = "takt_jetson"`). The class's folder holds `profile.yaml` (the defaults of its
profile) and `templates/`; its code holds its own validation rules, its renderer, and how a device
activates what it renders. Nothing in compiler/ or agent/ names a class.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ruamel.yaml import YAML

from compiler.bundle.activation import Activation
from compiler.render.profile import OpenProfile, TargetProfile, parse_profile

if TYPE_CHECKING:
    from jinja2 import Environment
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from compiler.codes import Rule
    from compiler.diagnostics import Diagnostic
    from compiler.render.context import RenderInput
    from compiler.spec.target import TargetSpec
    from compiler.validate.document import SpecDocument

BUILTIN_PACKAGE = "targets"  # every sub-package with a PLUGIN is a built-in class: a new folder is a new class
ENTRY_POINT_GROUP = "takt.targets"


@runtime_checkable
class TargetClassPlugin(Protocol):
    """What a target class is to the compiler and, through `activation`, to the device.

    Read-only members (properties), so a frozen dataclass such as ClassPlugin satisfies it.
    """

    @property
    def name(self) -> str:
        """The Target's `spec.class`: a DNS label."""
        ...

    @property
    def activation(self) -> Activation:
        """How a device activates the bundles (written into every manifest): RUN by the agent on the
        device itself, FLASH handed to a flash or build hook (it runs elsewhere), CLUSTER applied by a
        GitOps controller."""
        ...

    @property
    def rules(self) -> Sequence[Rule]:
        """The codes `validate` yields beyond compiler/codes.py (a third-party class's own; severities
        come from here, never from the call site)."""
        ...

    @property
    def profile(self) -> type[TargetProfile]:
        """The class's profile: a pydantic model whose defaults are the class's defaults; a Target's
        `spec.profile` overrides its fields (`profile.yaml` in the class folder may override defaults)."""
        ...

    @property
    def model_in_flash(self) -> bool:
        """The model is linked into the firmware, so it must fit the target's `flash`."""
        ...

    @property
    def model_by_reference(self) -> bool:
        """Bundles name the model by digest only; the build keeps the bytes for publish to push."""
        ...

    @property
    def executable(self) -> frozenset[str]:
        """Bundle paths written with mode 0755."""
        ...

    @property
    def latency_on_build_host(self) -> bool:
        """Whether the build host's onnxruntime timing stands for this class's devices (False: an MCU)."""
        ...

    def validate(self, doc: SpecDocument, target: TargetSpec) -> Iterable[Diagnostic]:
        """The class's own rules for one complete Target (after `extends`), as located diagnostics."""
        ...

    def render(self, inp: RenderInput, templates: Environment) -> dict[str, bytes]:
        """The bundle's files; raise RenderError for input the class cannot render."""
        ...

    def warnings(self, inp: RenderInput) -> Sequence[str]:
        """What the build should say about a rendered bundle (TAKT6003)."""
        ...


def _no_findings(doc: SpecDocument, target: TargetSpec) -> Iterable[Diagnostic]:
    return ()


def _no_warnings(inp: RenderInput) -> Sequence[str]:
    return ()


@dataclass(frozen=True)
class ClassPlugin:
    """A ready-made TargetClassPlugin: a class package fills in what it has."""

    name: str
    render: Callable[[RenderInput, Environment], dict[str, bytes]]
    activation: Activation = Activation.RUN
    validate: Callable[[SpecDocument, TargetSpec], Iterable[Diagnostic]] = _no_findings
    warnings: Callable[[RenderInput], Sequence[str]] = _no_warnings
    rules: Sequence[Rule] = ()
    profile: type[TargetProfile] = OpenProfile
    model_in_flash: bool = False
    model_by_reference: bool = False
    executable: frozenset[str] = field(default=frozenset())
    latency_on_build_host: bool = True


@dataclass(frozen=True)
class TargetClass:
    """A discovered class: its plugin, its folder, and its profile's defaults."""

    plugin: TargetClassPlugin
    folder: Path
    default_profile: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.plugin.name

    @property
    def rules(self) -> Sequence[Rule]:
        return self.plugin.rules

    def templates(self) -> ImmutableSandboxedEnvironment:
        """Templates come from the class folder only; spec values are data, never templates."""
        from jinja2 import FileSystemLoader, StrictUndefined  # only rendering needs jinja2, never validate
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(str(self.folder / "templates")),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        from compiler.render import escape

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

    def profile(self, overrides: Mapping[str, Any] | None) -> TargetProfile:
        """The class's typed profile: its defaults overlaid with a Target's `spec.profile`; ProfileError
        when the overrides do not fit it."""
        return parse_profile(self.plugin.profile, _merge(dict(self.default_profile), dict(overrides or {})))

    @property
    def latency_on_build_host(self) -> bool:
        """Whether the build host's onnxruntime timing stands for this class's devices (False: an MCU)."""
        return self.plugin.latency_on_build_host


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _load(module: object) -> TargetClass | None:
    """A class package and its PLUGIN; None for a module that is not one."""
    plugin = getattr(module, "PLUGIN", None)
    if not isinstance(module, ModuleType) or not isinstance(plugin, TargetClassPlugin):
        return None
    if not getattr(module, "__file__", None):
        return None
    folder = Path(str(module.__file__)).resolve().parent
    profile_file = folder / "profile.yaml"
    profile = (
        YAML(typ="safe", pure=True).load(profile_file.read_text(encoding="utf-8")) if profile_file.is_file() else {}
    )
    return TargetClass(plugin, folder, profile if isinstance(profile, dict) else {})


def _builtin_packages() -> list[str]:
    try:
        package = importlib.import_module(BUILTIN_PACKAGE)
    except ModuleNotFoundError:  # an installation without the built-in classes
        return []
    found = pkgutil.iter_modules(package.__path__, f"{BUILTIN_PACKAGE}.")
    return sorted(m.name for m in found if m.ispkg)


@functools.cache
def target_classes() -> dict[str, TargetClass]:
    """Built-in folders first, then installed packages (which cannot replace a built-in class)."""
    classes: dict[str, TargetClass] = {}
    for name in _builtin_packages():
        tc = _load(importlib.import_module(name))
        if tc is not None:
            classes[tc.name] = tc
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        tc = _load(ep.load())
        if tc is not None:
            classes.setdefault(tc.name, tc)
    return classes
