"""`Deployment`: which model runs where, fed by which data, gated by which tests."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator

from compiler.spec.addresses import mqtt_topic_problem, redact_url, url_problem
from compiler.spec.datasource import ModbusAddress, WholeLiteral, _node_id
from compiler.spec.types import (
    NAME_PATTERN,
    Bytes,
    Cpu,
    Duration,
    Integer,
    LabelSelector,
    Metadata,
    Name,
    SecretRef,
    SpecModel,
    Version,
    _err,
    _invalid,
)


class ModelRef(SpecModel):
    name: Name
    version: Version | None = None
    """Pin: the Model spec must carry exactly this version."""


def _model_shorthand(value: Any) -> Any:
    """`model: press-ae` and `model: press-ae@1.2.0` are shorthands for the mapping."""
    if isinstance(value, str):
        name, sep, version = value.partition("@")
        return {"name": name, "version": version} if sep else {"name": name}
    return value


_MODEL_REF_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": NAME_PATTERN[:-1] + r"(@[0-9A-Za-z][0-9A-Za-z.+_-]*)?$"},
        {
            "type": "object",
            "properties": {"name": {"type": "string", "pattern": NAME_PATTERN}, "version": {"type": "string"}},
            "required": ["name"],
            "additionalProperties": False,
        },
    ]
}


class Binding(SpecModel):
    input: str
    """Model input name."""
    source: Name
    """DataSource name."""
    fields: list[str] = Field(min_length=1)
    """DataSource fields, in the order of the input's last axis."""
    layout: Literal["features", "tensor"] = "features"
    """features: one field per position of the last axis; tensor: one field carries the whole input."""


def _publish_topic(value: str) -> str:
    problem = mqtt_topic_problem(value, allow_wildcards=False)
    if problem:
        raise _err("TAKT2010", "invalid MQTT publish topic {value!r}: {problem}", value=value[:120], problem=problem)
    return value


class _Output(SpecModel):
    name: str | None = None
    from_: str = Field(alias="from")
    """The model output published here."""


class MqttOutput(_Output):
    type: Literal["mqtt"]
    topic: Annotated[str, AfterValidator(_publish_topic)]
    connection: Name | None = None
    """An MQTT DataSource whose broker and credentials are reused."""
    broker: str | None = None
    qos: Annotated[Literal[0, 1, 2], WholeLiteral] = 1
    retain: bool = False

    @model_validator(mode="after")
    def _one_broker(self) -> MqttOutput:
        if (self.connection is None) == (self.broker is None):
            raise _invalid("give exactly one of connection (an MQTT DataSource) and broker (a URL)")
        if self.broker is not None:
            problem = url_problem(self.broker, ("mqtt", "mqtts", "ws", "wss"))
            if problem:
                raise _err(
                    "TAKT2006",
                    "invalid broker {value!r}: {problem}",
                    value=redact_url(self.broker)[:120],
                    problem=problem,
                )
        return self


class OpcUaOutput(_Output):
    type: Literal["opcua"]
    node_id: Annotated[str, AfterValidator(_node_id)]
    connection: Name
    """The OPC UA DataSource whose endpoint and security are reused."""


class HttpOutput(_Output):
    type: Literal["http"]
    url: str
    method: Literal["POST", "PUT"] = "POST"
    credentials_ref: SecretRef | None = None

    @model_validator(mode="after")
    def _url(self) -> HttpOutput:
        problem = url_problem(self.url, ("http", "https"))
        if problem:
            raise _err(
                "TAKT2006", "invalid url {value!r}: {problem}", value=redact_url(self.url)[:120], problem=problem
            )
        return self


class ModbusOutput(_Output):
    """A prediction written to a holding register (or a coil), for a PLC that cannot subscribe."""

    type: Literal["modbus"]
    address: ModbusAddress
    """Where and how the value is written, as a Modbus DataSource field reads it: the register holds
    (prediction − offset) / scale, encoded by dataType, wordOrder and byteOrder."""
    connection: Name | None = None
    """A Modbus DataSource whose endpoint, unit id and addressing are reused."""
    endpoint: str | None = None
    """Modbus TCP host:port, when no DataSource talks to this device."""
    unit_id: Integer | None = Field(default=None, ge=0, le=255)
    """Device id behind a gateway; default: the connection's, else 1."""
    addressing: Literal["zero-based", "one-based"] | None = None
    """How `address.address` counts; default: the connection's, else zero-based."""

    @model_validator(mode="after")
    def _one_device(self) -> ModbusOutput:
        if (self.connection is None) == (self.endpoint is None):
            raise _invalid("give exactly one of connection (a Modbus DataSource) and endpoint (host:port)")
        return self


Output = Annotated[MqttOutput | OpcUaOutput | HttpOutput | ModbusOutput, Field(discriminator="type")]


class Resources(SpecModel):
    cpu: Cpu | None = None
    memory: Bytes | None = None
    gpu: int | None = Field(default=None, ge=0)


class HealthGate(SpecModel):
    window: Duration = 300.0
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_latency_p95: Duration | None = None


class Canary(SpecModel):
    selector: LabelSelector | None = None
    percentage: int | None = Field(default=None, ge=1, le=100)
    """A deterministic share of the deployment's devices (the same devices on every publish)."""
    health_gate: HealthGate = HealthGate()


class Shadow(SpecModel):
    """The new model runs beside the current one on these devices, fed the same frames; only the
    current model's outputs are written. Promotion needs `minAgreement` for the whole `window`."""

    selector: LabelSelector | None = None
    percentage: int | None = Field(default=None, ge=1, le=100)
    min_agreement: float = Field(ge=0, le=1)
    """Classifiers: share of equal labels; regressors: share of values within `tolerance`."""
    window: Duration = 3600.0
    tolerance: float = Field(default=0.0, ge=0)
    """Regressors: the largest absolute difference that still agrees, in the output's unit."""


class Rollout(SpecModel):
    """How a changed Deployment reaches its devices. Which sections fit which strategy is checked
    by compiler.validate.rollouts, with a location for each mistake."""

    strategy: Literal["all-at-once", "canary", "shadow"] = "all-at-once"
    canary: Canary | None = None
    shadow: Shadow | None = None
    then: Literal["canary", "all-at-once"] | None = None
    """After a shadow rollout: a canary step (needs `canary`) or every device at once."""


class DriftMonitor(SpecModel):
    test_suite: Name
    dataset: str
    method: Literal["psi", "ks"] = "psi"
    threshold: float = Field(default=0.2, gt=0)
    window: Duration = 3600.0


class Monitoring(SpecModel):
    metrics: list[Literal["latency", "throughput", "errors", "input-range", "prediction-distribution"]] = [
        "latency",
        "errors",
    ]
    drift: DriftMonitor | None = None


class DeploymentSpec(SpecModel):
    model: Annotated[ModelRef, BeforeValidator(_model_shorthand), WithJsonSchema(_MODEL_REF_SCHEMA)]
    """A Model name, `name@version`, or {name, version}."""
    bindings: list[Binding] = Field(min_length=1)
    targets: list[Name] = Field(min_length=1)
    selector: LabelSelector | None = None
    """Devices of the listed targets that run this deployment; omitted: all of them."""
    gates: list[Name] = []
    """TestSuites that must pass before a bundle is rendered."""
    outputs: list[Output] = []
    resources: Resources | None = None
    rollout: Rollout = Rollout()
    monitoring: Monitoring | None = None


class Deployment(SpecModel):
    api_version: Literal["takt/v1"]
    kind: Literal["Deployment"]
    metadata: Metadata
    spec: DeploymentSpec
