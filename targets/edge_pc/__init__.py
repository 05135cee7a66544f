"""edge-pc: an industrial PC running the takt runner under systemd (or compose), managed by the agent."""

from targets.edge_pc.renderer import TARGET_CLASS, render

__all__ = ["TARGET_CLASS", "render"]
