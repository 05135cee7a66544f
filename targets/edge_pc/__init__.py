"""edge-pc: an industrial PC running the takt runner under systemd (or compose), managed by the agent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from compiler.bundle.activation import Activation
from compiler.render.platforms import application_host
from compiler.render.plugins import ClassPlugin
from targets.edge_pc.profile import EdgePcProfile

if TYPE_CHECKING:
    from jinja2 import Environment

    from compiler.render.context import RenderInput

TARGET_CLASS = "edge-pc"


def render(inp: RenderInput, templates: Environment) -> dict[str, bytes]:
    """The renderer, imported when a bundle is rendered: validation and a no-change build load the
    class (its profile, its rules) without it and without what it imports (numpy, pyarrow)."""
    from targets.edge_pc.renderer import render as render_bundle

    return render_bundle(inp, templates)


PLUGIN = ClassPlugin(
    name=TARGET_CLASS, render=render, activation=Activation.RUN, validate=application_host, profile=EdgePcProfile
)

__all__ = ["PLUGIN", "TARGET_CLASS", "render"]
