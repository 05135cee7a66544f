"""`DataSource`: where features come from, with each protocol's own address rules."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from compiler.spec.addresses import (
    MAX_REGISTER,
    json_path_problem,
    mqtt_topic_problem,
    parse_opcua_node_id,
    redact_url,
    url_problem,
)
from compiler.spec.types import (
    DType,
    Duration,
    Identifier,
    Integer,
    Metadata,
    Number,
    RelativePath,
    SecretRef,
    SpecModel,
    _err,
    _invalid,
    yaml_number,
)


class FieldBase(SpecModel):
    name: Identifier
    """Feature name, as model bindings refer to it."""
    dtype: DType
    unit: str | None = None
    """Physical unit (e.g. mm/s, degC, bar); compared with the model feature's unit."""
    range: tuple[Number, Number] | None = None
    """Valid [min, max]; data tests and the runner flag values outside."""
    shape: list[int] | None = None
    """For tensor-valued fields (an image, a spectrum): the shape of one reading."""
    description: str | None = None

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise _invalid("range [{lo}, {hi}] must be [min, max]", lo=value[0], hi=value[1])
        return value


# --- OPC UA ------------------------------------------------------------------------------------


def _node_id(value: str) -> str:
    """A node that is read or written: valid by the grammar, and not the null node id."""
    parsed, problem = parse_opcua_node_id(value)
    if problem:
        raise _err("TAKT2001", "invalid OPC UA node id {value!r}: {problem}", value=value[:120], problem=problem)
    if parsed is not None and parsed.is_null:
        raise _err(
            "TAKT2007",
            "{value!r} is the null node id, which names no node: give the node's own id",
            value=value[:120],
        )
    return value


class OpcUaAddress(SpecModel):
    node_id: Annotated[str, AfterValidator(_node_id)]
    """`nsu=<namespace URI>;s=<id>` (stable) or `ns=<index>;i|s|g|b=<id>`."""


class OpcUaField(FieldBase):
    address: OpcUaAddress


class OpcUaSecurity(SpecModel):
    mode: Literal["None", "Sign", "SignAndEncrypt"]
    policy: Literal[
        "None", "Basic128Rsa15", "Basic256", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"
    ]
    credentials_ref: SecretRef | None = None
    """User name and password, as a reference."""
    certificate_ref: SecretRef | None = None
    """Client certificate and private key, as a reference."""

    @model_validator(mode="after")
    def _mode_matches_policy(self) -> OpcUaSecurity:
        if (self.mode == "None") != (self.policy == "None"):
            raise _err(
                "TAKT2003",
                "security mode {mode!r} with policy {policy!r}: mode None goes with policy None, "
                "and Sign/SignAndEncrypt need a real policy",
                mode=self.mode,
                policy=self.policy,
            )
        return self


def _endpoint(schemes: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        problem = url_problem(value, schemes)
        if problem:
            raise _err(
                "TAKT2006", "invalid endpoint {value!r}: {problem}", value=redact_url(value)[:120], problem=problem
            )
        return value

    return AfterValidator(check)


class OpcUaSource(SpecModel):
    protocol: Literal["opcua"]
    endpoint: Annotated[str, _endpoint(("opc.tcp", "opc.https", "opc.wss"))]
    security: OpcUaSecurity
    sampling_interval: Duration
    fields: list[OpcUaField] = Field(min_length=1)


# --- MQTT --------------------------------------------------------------------------------------


def _sub_topic(value: str) -> str:
    problem = mqtt_topic_problem(value, allow_wildcards=True)
    if problem:
        raise _err("TAKT2010", "invalid MQTT topic {value!r}: {problem}", value=value[:120], problem=problem)
    return value


def _json_path(value: str) -> str:
    problem = json_path_problem(value)
    if problem:
        raise _err("TAKT2012", "invalid JSON path {value!r}: {problem}", value=value[:120], problem=problem)
    return value


class MqttAddress(SpecModel):
    topic: Annotated[str, AfterValidator(_sub_topic)]
    json_path: Annotated[str, AfterValidator(_json_path)] | None = None
    """Where the value sits in a JSON payload; omitted: the payload is the number."""
    metric: str | None = None
    """Sparkplug B metric name (with `sparkplug: true`)."""


class MqttField(FieldBase):
    address: MqttAddress


class MqttTls(SpecModel):
    ca_ref: SecretRef | None = None
    certificate_ref: SecretRef | None = None


class MqttSource(SpecModel):
    protocol: Literal["mqtt"]
    broker: Annotated[str, _endpoint(("mqtt", "mqtts", "ws", "wss"))]
    client_id: str | None = None
    qos: Annotated[Literal[0, 1, 2], WholeLiteral] = 1
    credentials_ref: SecretRef | None = None
    tls: MqttTls | None = None
    sparkplug: bool = False
    """Topics and payloads follow Sparkplug B."""
    sampling_interval: Duration | None = None
    """Window over which the latest values form one model input."""
    fields: list[MqttField] = Field(min_length=1)


# --- Modbus ------------------------------------------------------------------------------------


RegisterAddress = Annotated[Integer, WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_REGISTER + 1})]
"""Which registers exist depends on the addressing and the data type (TAKT2020: compiler/validate/protocols.py)."""
BitIndex = Annotated[Integer, Field(ge=0, le=15), WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 15})]
DataTypeName = Literal["bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
WholeLiteral = BeforeValidator(yaml_number)
"""For Literal numbers (qos, baud rate): pydantic would take `true` for 1."""


class ModbusAddress(SpecModel):
    register_type: Literal["coil", "discrete-input", "input-register", "holding-register"]
    address: RegisterAddress
    """Register number within its type, counted as `addressing` says: `address: 0` with
    `registerType: holding-register` is Modicon 40001. Decimal or hex (0x10)."""
    data_type: DataTypeName
    """How the register(s) are decoded; 32-bit types span 2 registers, 64-bit types 4."""
    bit: BitIndex | None = None
    """For bool values packed into a register."""
    word_order: Literal["big", "little"] = "big"
    """Order of the 16-bit registers of a 32/64-bit value: big puts the most significant word in the
    lowest register (ABCD, the usual default); little is the "word-swapped" layout (CDAB for float32)."""
    byte_order: Literal["big", "little"] = "big"
    """Order of the two bytes within each register: big is the Modbus standard; little is "byte-swapped"
    (BADC for float32 with wordOrder big, DCBA with wordOrder little)."""
    scale: Number = 1.0
    """The value is register × scale + offset."""
    offset: Number = 0.0


class ModbusField(FieldBase):
    address: ModbusAddress


class ModbusSerial(SpecModel):
    baud_rate: Annotated[Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200], WholeLiteral] = 19200
    parity: Literal["N", "E", "O"] = "E"
    data_bits: Annotated[Literal[7, 8], WholeLiteral] = 8
    stop_bits: Annotated[Literal[1, 2], WholeLiteral] = 1


class ModbusSource(SpecModel):
    protocol: Literal["modbus"]
    transport: Literal["tcp", "rtu"]
    endpoint: str
    """tcp: host:port; rtu: serial device path such as /dev/ttyUSB0."""
    serial: ModbusSerial | None = None
    unit_id: Integer = Field(default=1, ge=0, le=255)
    addressing: Literal["zero-based", "one-based"] = "zero-based"
    """How register addresses below are counted (the protocol itself is zero-based)."""
    sampling_interval: Duration
    fields: list[ModbusField] = Field(min_length=1)


# --- file --------------------------------------------------------------------------------------


class FileAddress(SpecModel):
    column: str


class FileField(FieldBase):
    address: FileAddress


class FileSource(SpecModel):
    protocol: Literal["file"]
    path: RelativePath
    format: Literal["csv", "npz", "jsonl"]
    sampling_interval: Duration | None = None
    """Replay rate; omitted: as fast as the model runs."""
    fields: list[FileField] = Field(min_length=1)


DataSourceSpec = Annotated[OpcUaSource | MqttSource | ModbusSource | FileSource, Field(discriminator="protocol")]


class DataSource(SpecModel):
    api_version: Literal["takt/v1"]
    kind: Literal["DataSource"]
    metadata: Metadata
    spec: DataSourceSpec
