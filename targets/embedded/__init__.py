"""embedded: an MCU or gateway-flashed device; a gateway agent hands the bundle to a flash/build hook."""

from targets.embedded.renderer import TARGET_CLASS, render, warnings

__all__ = ["TARGET_CLASS", "render", "warnings"]
