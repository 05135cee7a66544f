"""One runner per bundle: build everything from the contract (or refuse to start), then run the loop.

`Runner.build` checks all that can be checked before any traffic — contract semantics, secrets,
the model's digest, supported protocols — and raises StartError naming the field. `Runner.run`
serves until `stop` is set, then drains the outputs for a bounded time and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from compiler.bundle import runner as contract
from compiler.bundle.readiness import Readiness, SourceReadiness
from runner import decode
from runner.connect import mqtt_params, opcua_client, split_host_port, split_pem
from runner.engine import Engine
from runner.errors import StartError
from runner.http import Api
from runner.metrics import Metrics
from runner.model import LoadedModel, load_model
from runner.outputs.base import Output
from runner.outputs.http import HttpOutput
from runner.outputs.modbus import ModbusOutput
from runner.outputs.mqtt import MqttOutput
from runner.outputs.opcua import OpcUaOutput
from runner.secrets import SecretResolver
from runner.shadow import Challenger, ShadowCollector
from runner.sources.file import FileSourceRunner
from runner.sources.modbus import ModbusSourceRunner
from runner.sources.mqtt import MqttSourceRunner
from runner.sources.opcua import OpcUaSourceRunner
from runner.table import Table

log = logging.getLogger("takt.runner")
DRAIN_SECONDS = 3.0


@dataclass(frozen=True)
class Settings:
    config_path: Path
    http_host: str = "0.0.0.0"
    http_port: int | None = 8080  # None: no HTTP server (tests driving the engine directly)
    environ: Mapping[str, str] = field(default_factory=dict)
    shadow_path: Path | None = None  # a shadow entry (takt/shadow/v1): a challenger beside the model


def read_config(path: Path) -> contract.RunnerConfig:
    try:
        with path.open("rb") as fh:
            data = fh.read(contract.MAX_BYTES + 1)
    except OSError as exc:
        raise StartError(str(path), f"cannot read the config ({exc.strerror or exc})") from None
    try:
        return contract.RunnerConfig.parse(data)
    except contract.ContractError as exc:
        raise StartError(str(path), str(exc)) from None


class Runner:
    def __init__(self, settings: Settings, config: contract.RunnerConfig, model: LoadedModel, table: Table,
                 sources: list[Any], outputs: list[Output], metrics: Metrics) -> None:  # fmt: skip
        self.settings, self.config, self.model, self.table = settings, config, model, table
        self.sources, self.outputs, self.metrics = sources, outputs, metrics
        self.engine = Engine(config, model, table, outputs, metrics)
        self.challenger: Challenger | None = None
        self.bound = sorted(self.engine.bound_sources())
        self.port: int | None = None
        table.on_reject = lambda source, reason: metrics.rejected.labels(source, reason).inc()
        table.on_connected = lambda source, up: metrics.connected.labels(source).set(1 if up else 0)
        for name in config.sources:
            metrics.connected.labels(name).set(0)

    @classmethod
    def build(cls, settings: Settings) -> Runner:
        config = read_config(settings.config_path)
        base = settings.config_path.parent
        _check_bindings(config)
        resolver = SecretResolver(settings.environ, base)
        metrics = Metrics.create()
        table = Table()
        sources: list[Any] = []
        bound = {b.source for b in config.bindings}
        for name in sorted(bound):
            sources.append(_source(name, config.sources[name], resolver, table, base))
        model = load_model(config, base)
        outputs = [_output(i, o, config, resolver, metrics, model) for i, o in enumerate(config.outputs)]
        runner = cls(settings, config, model, table, sources, outputs, metrics)
        if settings.shadow_path is not None:
            runner.challenger = runner.engine.challenger = Challenger.load(settings.shadow_path, config)
            metrics.registry.register(ShadowCollector(runner.challenger))
        return runner

    def ready(self) -> bool:
        now = self.table.clock()
        return all(self.table.source_fresh(s, now) for s in self.bound)

    def readiness(self) -> Readiness:
        """Ready, and per bound source whether it is connected, fresh, or refused by its server."""
        now, table = self.table.clock(), self.table
        sources = tuple(
            SourceReadiness(s, table.sources[s].connected, table.source_fresh(s, now), table.sources[s].refused)
            for s in self.bound
        )
        return Readiness(all(s.fresh for s in sources), sources)

    def refresh(self) -> None:
        self.metrics.ready.set(1 if self.ready() else 0)
        self.engine.drift_values(self.table.clock())

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(s.run(), name=f"source:{s.name}") for s in self.sources]
        tasks += [asyncio.create_task(o.run(), name=f"output:{o.name}") for o in self.outputs]
        engine = asyncio.create_task(self.engine.run(), name="engine")
        site_runner = None
        if self.settings.http_port is not None:
            tensors = {t.name: t for t in self.config.model.inputs}
            outs = {t.name: t for t in self.config.model.outputs}
            api = Api(self.model, tensors, outs, self.readiness, self.metrics, self.refresh)
            site_runner = web.AppRunner(api.app(), access_log=None, handle_signals=False)
            await site_runner.setup()
            site = web.TCPSite(site_runner, self.settings.http_host, self.settings.http_port)
            try:
                await site.start()
            except OSError as exc:
                await site_runner.cleanup()
                for t in [*tasks, engine]:
                    t.cancel()
                why = f"cannot listen on {self.settings.http_port} ({exc.strerror})"
                raise StartError("--http-port", why) from None
            self.port = site_runner.addresses[0][1] if site_runner.addresses else self.settings.http_port
            log.info("listening on %s:%s", self.settings.http_host, self.port)
        try:
            await stop.wait()
        finally:
            for t in tasks[: len(self.sources)]:
                t.cancel()  # no new values; what is queued still goes out
            await asyncio.gather(*(o.drain(DRAIN_SECONDS) for o in self.outputs))
            for t in [*tasks, engine]:
                t.cancel()
            for t in [*tasks, engine]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            if site_runner is not None:
                await site_runner.cleanup()


def _check_bindings(config: contract.RunnerConfig) -> None:
    bound = [b.input for b in config.bindings]
    for t in config.model.inputs:
        if bound.count(t.name) != 1:
            why = f"model input {t.name!r} must be bound exactly once, not {bound.count(t.name)} times"
            raise StartError("bindings", why)


def _source(name: str, spec: contract.Source, resolver: SecretResolver, table: Table, base: Path) -> Any:
    what = f"sources.{name}"
    if isinstance(spec, contract.FileSource):
        return FileSourceRunner(name, spec, base, table)
    if isinstance(spec, contract.MqttSource):
        params = mqtt_params(spec.broker, resolver, what, spec.credentials_ref, spec.tls, spec.client_id)
        return MqttSourceRunner(name, spec, params, table)
    if isinstance(spec, contract.ModbusSource):
        return ModbusSourceRunner(name, spec, table)
    if isinstance(spec, contract.OpcUaSource):
        _check_opcua_secrets(spec, resolver, what)
        return OpcUaSourceRunner(name, spec, lambda: opcua_client(spec, resolver, what), table)
    raise StartError(what, f"protocol {spec.protocol} is not supported by this runner")


def _check_opcua_secrets(spec: contract.OpcUaSource, resolver: SecretResolver, what: str) -> None:
    """Resolve the OPC UA secrets once at start, so a wrong reference stops the runner, not a retry loop."""
    if spec.security.credentials_ref:
        resolver.credentials(spec.security.credentials_ref, f"{what}.security.credentialsRef")
    if spec.security.certificate_ref:
        where = f"{what}.security.certificateRef"
        split_pem(resolver.resolve(spec.security.certificate_ref, where).encode(), where)
    elif spec.security.mode != "None":
        raise StartError(f"{what}.security", f"mode {spec.security.mode} needs certificateRef")


def _output(i: int, o: contract.Output, config: contract.RunnerConfig, resolver: SecretResolver, metrics: Metrics,
            model: LoadedModel) -> Output:  # fmt: skip
    what = f"outputs[{i}]"
    name = o.name or f"{o.type}-{i}"
    ident = (model.name, model.version)
    if isinstance(o, contract.MqttOutput):
        if o.connection:
            src = config.sources[o.connection]
            if not isinstance(src, contract.MqttSource):
                raise StartError(f"{what}.connection", f"{o.connection!r} is not an MQTT source")
            client_id = f"{src.client_id}-out" if src.client_id else None
            where = f"sources.{o.connection}"
            params = mqtt_params(src.broker, resolver, where, src.credentials_ref, src.tls, client_id)
        else:
            params = mqtt_params(o.broker or "", resolver, what)
        return MqttOutput(name, o.from_, metrics, params, o.topic, o.qos, o.retain, ident)
    if isinstance(o, contract.OpcUaOutput):
        src = config.sources[o.connection]
        if not isinstance(src, contract.OpcUaSource):
            raise StartError(f"{what}.connection", f"{o.connection!r} is not an OPC UA source")
        _check_opcua_secrets(src, resolver, f"sources.{o.connection}")
        return OpcUaOutput(name, o.from_, metrics, lambda: opcua_client(src, resolver, f"sources.{o.connection}"),
                           o.node_id)  # fmt: skip
    if isinstance(o, contract.ModbusOutput):
        return _modbus_output(what, name, o, config, metrics)
    token = resolver.resolve(o.credentials_ref, f"{what}.credentialsRef") if o.credentials_ref else None
    return HttpOutput(name, o.from_, metrics, o.url, o.method, token, ident)


def _modbus_output(what: str, name: str, o: contract.ModbusOutput, config: contract.RunnerConfig,
                   metrics: Metrics) -> Output:  # fmt: skip
    """The device from the connection (its endpoint, unit id, addressing) or the output's own endpoint."""
    endpoint, unit, addressing = o.endpoint or "", 1, "zero-based"
    if o.connection:
        src = config.sources[o.connection]
        if not isinstance(src, contract.ModbusSource) or src.transport != "tcp":
            raise StartError(f"{what}.connection", f"{o.connection!r} is not a Modbus TCP source")
        endpoint, unit, addressing = src.endpoint, src.unit_id, src.addressing
    host, port = split_host_port(endpoint, 502)
    if o.unit_id is not None:
        unit = o.unit_id
    shift = 1 if (o.addressing or addressing) == "one-based" else 0
    a = o.address
    words = 1 if a.register_type == "coil" else decode.register_count(a.data_type)
    if a.register_type not in ("holding-register", "coil"):
        raise StartError(f"{what}.address.registerType", f"{a.register_type}s cannot be written")
    if not 0 <= a.address - shift <= 0x10000 - words:
        raise StartError(f"{what}.address.address", f"register {a.address} is outside the Modbus address space")
    if not (a.scale and math.isfinite(a.scale) and math.isfinite(a.offset)):
        raise StartError(f"{what}.address.scale", "scale must be a finite number other than 0")
    if not 0 <= unit <= 255:
        raise StartError(f"{what}.unitId", f"unit id {unit} is outside 0..255")
    return ModbusOutput(name, o.from_, metrics, host, port, unit, a, shift)
