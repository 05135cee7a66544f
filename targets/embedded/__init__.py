"""embedded: an MCU or gateway-flashed device; a gateway agent hands the bundle to a flash/build hook."""

from compiler.bundle.activation import Activation
from compiler.render.plugins import ClassPlugin
from targets.embedded.profile import EmbeddedProfile
from targets.embedded.renderer import TARGET_CLASS, render
from targets.embedded.rules import validate

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
