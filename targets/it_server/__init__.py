"""it-server: a kustomize directory for Kubernetes, applied by Argo CD or Flux."""

from __future__ import annotations

from typing import TYPE_CHECKING

from compiler.bundle.activation import Activation
from compiler.render.platforms import application_host
from compiler.render.plugins import ClassPlugin
from targets.it_server.profile import ItServerProfile

if TYPE_CHECKING:
    from jinja2 import Environment

    from compiler.render.context import RenderInput

TARGET_CLASS = "it-server"
MODEL_BY_REFERENCE = True  # the bundle names its model by digest; publish pushes the bytes to the registry


def render(inp: RenderInput, templates: Environment) -> dict[str, bytes]:
    """The renderer, imported when a bundle is rendered (validation loads the class without it)."""
    from targets.it_server.renderer import render as render_bundle

    return render_bundle(inp, templates)


PLUGIN = ClassPlugin(
    name=TARGET_CLASS,
    render=render,
    activation=Activation.CLUSTER,  # publish writes clusters/<device>/ for the GitOps controller
    validate=application_host,
    model_by_reference=MODEL_BY_REFERENCE,
    profile=ItServerProfile,
)

__all__ = ["MODEL_BY_REFERENCE", "PLUGIN", "TARGET_CLASS", "render"]
