"""How a device activates a bundle: the one fact about its target class the device side needs.

The target class decides it when it renders (a class plugin's `activation`); it crosses to the
device in the manifest, so the agent never keys on class names it cannot know.
"""

from __future__ import annotations

import enum


class Activation(enum.Enum):
    RUN = "run"
    """The agent installs the release and a runner serves it on this machine (its arch must match)."""
    FLASH = "flash"
    """The bundle is firmware input for another device: the agent stages it and hands it to the
    flash or build hook; nothing of it runs here, so this machine's architecture is no concern."""
    CLUSTER = "cluster"
    """A GitOps controller applies it to a cluster; publish writes the cluster's files."""

    @property
    def runs_here(self) -> bool:
        return self is Activation.RUN

    @classmethod
    def parse(cls, value: object) -> Activation:
        """The activation named in a manifest; ValueError (only) for anything else."""
        for member in cls:
            if member.value == value:
                return member
        raise ValueError(f"unknown activation {str(value)[:40]!r}")
