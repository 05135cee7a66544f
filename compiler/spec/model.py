"""`Model`: one versioned ONNX model, its signature, preprocessing and lineage."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from compiler.spec.types import DType, Identifier, Metadata, RelativePath, Sha256, SpecModel, Version, _invalid

SYMBOL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)


def _check_dim(value: int | str) -> int | str:
    if isinstance(value, int) and value < 1:
        raise _invalid("dimension {value} must be >= 1, or a symbolic name such as 'batch'", value=value)
    if isinstance(value, str) and not _SYMBOL_RE.match(value):
        raise _invalid("symbolic dimension {value!r} must be an identifier such as 'batch'", value=value[:80])
    return value


Dim = Annotated[int | str, AfterValidator(_check_dim)]


class Feature(SpecModel):
    name: Identifier
    unit: str | None = None


class Tensor(SpecModel):
    name: str = Field(min_length=1)
    """The tensor name inside the ONNX graph."""
    dtype: DType
    shape: list[Dim]
    """Static sizes and symbolic names, e.g. [batch, 3]."""
    features: list[Feature] | None = None
    """What each position along the last axis means, in order (inputs)."""
    description: str | None = None


class Artifact(SpecModel):
    path: RelativePath | None = None
    """Relative to the project root (the directory of takt.yaml)."""
    uri: str | None = None
    """https://, s3://, gs://, oci:// … fetched at build time and checked against sha256; or an MLflow model,
    `models:/<name>/<version>` or `runs:/<run-id>/<path>`, resolved against MLFLOW_TRACKING_URI (extra `mlflow`)."""
    sha256: Sha256

    @model_validator(mode="after")
    def _one_location(self) -> Artifact:
        if (self.path is None) == (self.uri is None):
            raise _invalid("give exactly one of artifact.path and artifact.uri")
        if self.uri is not None and not re.match(
            r"^((https|s3|gs|oci|az)://\S+|models:/[^/\s]+/\d+|runs:/[0-9a-zA-Z]{1,64}/\S+)$", self.uri
        ):
            raise _invalid(
                "artifact uri {uri!r} must be https://, s3://, gs://, az://, oci://, models:/<name>/<version>"
                " or runs:/<run-id>/<path>",
                uri=self.uri[:120],
            )
        return self


class Standardize(SpecModel):
    op: Literal["standardize"]
    mean: list[float] = Field(min_length=1)
    std: list[float] = Field(min_length=1)
    input: str | None = None


class MinMax(SpecModel):
    op: Literal["minmax"]
    min: list[float] = Field(min_length=1)
    max: list[float] = Field(min_length=1)
    input: str | None = None


class Clip(SpecModel):
    op: Literal["clip"]
    min: float
    max: float
    input: str | None = None


class FillMissing(SpecModel):
    op: Literal["fill-missing"]
    value: float = 0.0
    input: str | None = None


class Window(SpecModel):
    op: Literal["window"]
    size: int = Field(ge=1)
    stride: int = Field(default=1, ge=1)
    input: str | None = None


Preprocessing = Annotated[Standardize | MinMax | Clip | FillMissing | Window, Field(discriminator="op")]


class DataDigest(SpecModel):
    uri: str
    sha256: Sha256 | None = None


class Lineage(SpecModel):
    training_data: DataDigest | None = None
    code_repo: str | None = None
    code_commit: Annotated[str, Field(pattern=r"^[0-9a-f]{7,64}$")] | None = None
    parent: str | None = None
    """The model this one was derived from, as name@version."""
    trained_at: str | None = None


class ModelSpec(SpecModel):
    version: Version
    format: Literal["onnx"] = "onnx"
    task: Literal[
        "classification",
        "binary-classification",
        "regression",
        "anomaly-detection",
        "object-detection",
        "segmentation",
        "forecasting",
        "other",
    ]
    artifact: Artifact
    inputs: list[Tensor] = Field(min_length=1)
    outputs: list[Tensor] = Field(min_length=1)
    class_labels: list[str] | None = None
    preprocessing: list[Preprocessing] = []
    lineage: Lineage | None = None


class Model(SpecModel):
    api_version: Literal["takt/v1"]
    kind: Literal["Model"]
    metadata: Metadata
    spec: ModelSpec
