"""edge-pc: an industrial PC running the takt runner under systemd (or compose), managed by the agent."""

from compiler.bundle.activation import Activation
from compiler.render.platforms import application_host
from compiler.render.plugins import ClassPlugin
from targets.edge_pc.profile import EdgePcProfile
from targets.edge_pc.renderer import TARGET_CLASS, render

PLUGIN = ClassPlugin(
    name=TARGET_CLASS, render=render, activation=Activation.RUN, validate=application_host, profile=EdgePcProfile
)

__all__ = ["PLUGIN", "TARGET_CLASS", "render"]
