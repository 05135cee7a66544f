"""embedded: an MCU or gateway-flashed device; a gateway agent hands the bundle to a flash/build hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from compiler.bundle.activation import Activation
from compiler.render.plugins import ClassPlugin
from targets.embedded.profile import EmbeddedProfile
from targets.embedded.rules import validate

if TYPE_CHECKING:
    from jinja2 import Environment

    from compiler.render.context import RenderInput

TARGET_CLASS = "embedded"


def render(inp: RenderInput, templates: Environment) -> dict[str, bytes]:
    """The renderer, imported when a bundle is rendered (validation loads the class without it)."""
    from targets.embedded.renderer import render as render_bundle

    return render_bundle(inp, templates)


PLUGIN = ClassPlugin(
    name=TARGET_CLASS,
    render=render,
    activation=Activation.FLASH,  # firmware input: the gateway's flash or build hook takes it, nothing runs here
    validate=validate,
    profile=EmbeddedProfile,
    model_in_flash=True,
    latency_on_build_host=False,  # an MCU runs the model on its own core: the build host's timing says nothing
)

__all__ = ["PLUGIN", "TARGET_CLASS", "render"]
