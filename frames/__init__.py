"""The one feature pipeline (numpy only), shared by `takt test` and `takt-runner`.

Bindings → model inputs (`assemble`), preprocessing with every step the spec language accepts
(`Pipeline`, batch and streaming), and the reference statistics behind drift (`ReferenceBins`,
`RollingPSI`). What `takt test` judged is computed by the same code the runner runs on the line.
"""

from frames.assemble import NP_DTYPES, FramesError, InputSpec, MissingColumns, assemble, cast
from frames.drift import ReferenceBins, RollingPSI, psi, reference_bins
from frames.preprocess import Pipeline, PreprocessError, StreamState

__all__ = [
    "NP_DTYPES",
    "FramesError",
    "InputSpec",
    "MissingColumns",
    "Pipeline",
    "PreprocessError",
    "ReferenceBins",
    "RollingPSI",
    "StreamState",
    "assemble",
    "cast",
    "psi",
    "reference_bins",
]
