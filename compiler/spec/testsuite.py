"""`TestSuite`: what a model must show before it ships, judged statistically."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from compiler.spec.types import Duration, Identifier, Metadata, Name, RelativePath, Sha256, SpecModel, _invalid


class Dataset(SpecModel):
    path: RelativePath
    """Parquet, Arrow IPC/Feather, CSV or NPZ, relative to the project root."""
    sha256: Sha256 | None = None
    format: Literal["csv", "npz", "parquet", "arrow", "feather"] | None = None
    """Inferred from the suffix when absent (.csv, .npz, .parquet/.pq, .arrow/.ipc, .feather)."""
    label_column: str | None = None


class Tolerance(SpecModel):
    abs: float = Field(default=0.0, ge=0)
    rel: float = Field(default=0.0, ge=0)


class _Test(SpecModel):
    name: Identifier
    gate: bool = True
    """A failing gating test blocks the deployments that list this suite."""


MAX_SAMPLE_BYTES = 256 << 20  # golden samples travel in every edge bundle: far below this


class GoldenTest(_Test):
    type: Literal["golden"]
    samples: RelativePath
    """NPZ with arrays `<input>` and `expected/<output>`, or JSON."""
    tolerance: Tolerance = Tolerance()


class MetricTest(_Test):
    type: Literal["metric"]
    metric: Literal["accuracy", "precision", "recall", "f1", "mae", "rmse"]
    dataset: Identifier
    threshold: float
    """Accuracy-like metrics: the lower confidence bound must reach it; errors: the upper bound must stay below."""
    confidence: float = Field(default=0.95, gt=0, lt=1)
    output: str | None = None
    positive_class: str | int | None = None
    decision_threshold: float | None = None


class DataChecks(SpecModel):
    schema_: bool = Field(default=True, alias="schema")
    ranges: bool = True
    max_missing: float = Field(default=0.0, ge=0, le=1)


class DataTest(_Test):
    type: Literal["data"]
    dataset: Identifier
    source: Name | None = None
    """DataSource whose field dtypes and ranges the dataset must respect."""
    checks: DataChecks = DataChecks()


class DriftTest(_Test):
    type: Literal["drift"]
    reference: Identifier
    candidate: Identifier
    method: Literal["psi", "ks"]
    threshold: float = Field(gt=0)
    bins: int = Field(default=10, ge=2, le=1000)
    features: list[str] | None = None


class LatencyBudget(SpecModel):
    p50: Duration | None = None
    p95: Duration | None = None
    p99: Duration | None = None


class LatencyTest(_Test):
    """Timed with onnxruntime on the machine that runs `takt test` or `takt build`, which every result names.

    A Deployment's targets are judged each by its own budget: its entry in `budgets`, else its class's
    entry there, else `budget`. A target class whose devices do not run the model on a CPU like the
    build host's (embedded) is never judged by the build host's timing; the build says so instead.
    """

    type: Literal["latency"]
    budget: LatencyBudget | None = None
    """The budget of every target without an entry in `budgets`."""
    budgets: dict[Name, LatencyBudget] = {}
    """Budgets per target name or per target class (e.g. `it-server: {p99: 20ms}`)."""
    warmup: int = Field(default=10, ge=0)
    runs: int = Field(default=200, ge=10, le=1_000_000)
    batch_size: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _some_budget(self) -> LatencyTest:
        if self.budget is None and not self.budgets:
            raise _invalid("a latency test needs a budget, or budgets per target or target class")
        for b in [self.budget, *self.budgets.values()]:
            if b is not None and b.p50 is None and b.p95 is None and b.p99 is None:
                raise _invalid("a latency budget needs at least one of p50, p95, p99")
        return self

    def budget_for(self, target: str, target_class: str) -> tuple[str, LatencyBudget] | None:
        """(which entry, budget) that judges a target, or None when no budget applies to it."""
        for key in (target, target_class):
            if key in self.budgets:
                return key, self.budgets[key]
        return ("budget", self.budget) if self.budget is not None else None


class InvarianceTest(_Test):
    type: Literal["invariance"]
    dataset: Identifier
    noise: dict[str, float] = Field(min_length=1)
    """Standard deviation of Gaussian noise per feature, in the feature's unit."""
    max_flip_rate: float = Field(ge=0, le=1)
    trials: int = Field(default=5, ge=1, le=1000)
    seed: int = 0


Test = Annotated[
    GoldenTest | MetricTest | DataTest | DriftTest | LatencyTest | InvarianceTest, Field(discriminator="type")
]


class TestSuiteSpec(SpecModel):
    model: Name
    datasets: dict[Identifier, Dataset] = {}
    tests: list[Test] = Field(min_length=1)


class TestSuite(SpecModel):
    __test__ = False  # not a pytest class

    api_version: Literal["takt/v1"]
    kind: Literal["TestSuite"]
    metadata: Metadata
    spec: TestSuiteSpec
