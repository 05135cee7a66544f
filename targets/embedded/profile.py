"""The embedded profile: how the model is linked into the firmware."""

from __future__ import annotations

from pydantic import StrictInt

from compiler.render.profile import TargetProfile


class EmbeddedProfile(TargetProfile):
    symbol: str = "takt_model"
    """C symbol prefix of the model array (a C identifier)."""
    alignment: StrictInt = 16
    """Bytes (4, 8, 16, 32 or 64); the ORT flatbuffer is read in place."""
