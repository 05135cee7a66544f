"""embedded: an MCU or gateway-flashed device; a gateway agent hands the bundle to a flash/build hook."""

from targets.embedded.renderer import TARGET_CLASS, render

# An MCU runs the model on its own core and memory: the build host's timing says nothing about it.
LATENCY_ON_BUILD_HOST = False

__all__ = ["LATENCY_ON_BUILD_HOST", "TARGET_CLASS", "render"]
