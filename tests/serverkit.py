"""Real servers on 127.0.0.1 for runner tests: mosquitto (a subprocess), an asyncua OPC UA server and
a pymodbus TCP server (each on its own asyncio loop in a thread). Each can be stopped and started
again on the same port, to test outages and recovery."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def app_certificate(uri: str, name: str) -> tuple[bytes, bytes]:
    """A self-signed OPC UA application certificate and its key (PEM), as OPC 10000-6 describes them."""
    from asyncua.crypto import cert_gen
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key, name, {}, [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")],
        [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
    )  # fmt: skip
    return cert.public_bytes(Encoding.PEM), cert_gen.dump_private_key_as_pem(key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


class Mosquitto:
    def __init__(self, workdir: Path, users: dict[str, str] | None = None) -> None:
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/tools.sh does it as root)")
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        conf = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest none", "set_tcp_nodelay true"]
        if os.geteuid() == 0:
            conf.append("user root")  # as root mosquitto would drop to its own user, who cannot read tmp_path
        if users:
            pw = workdir / "passwd"
            pw.touch()
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True, capture_output=True)
            pw.chmod(0o600)
            conf += ["allow_anonymous false", f"password_file {pw}"]
        else:
            conf.append("allow_anonymous true")
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text("\n".join(conf) + "\n")
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)  # fmt: skip
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


class MqttProbe:
    """A paho-mqtt client for the test: publish like a PLC gateway, collect what the runner publishes."""

    def __init__(self, port: int, subscribe: str | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, float]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload, time.perf_counter()))
        self.client.connect("127.0.0.1", port)
        if subscribe:
            self.client.subscribe(subscribe, qos=1)
        self.client.loop_start()
        time.sleep(0.1)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class LoopThread:
    """An asyncio loop in a daemon thread, for in-process servers driven from synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class OpcUaServer:
    """asyncua server with float variables a, b (inputs) and a writable output y under one namespace URI.

    `restart(shift=True)` registers extra namespaces first, so the URI's index moves, as it can
    between a real server's restarts."""

    URI = "urn:takt:test:press"

    def __init__(
        self, loop: LoopThread, users: dict[str, str] | None = None, secure: tuple[bytes, bytes] | None = None
    ) -> None:
        self.loop, self.users, self.secure = loop, users, secure  # secure: the server's (certificate, key) PEM
        self.port = free_port()
        self.server: Any = None
        self.nodes: dict[str, Any] = {}
        self.index = 0
        self.loop.call(self._start(shift=0))

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/takt/"

    async def _start(self, shift: int) -> None:
        from asyncua import Server, ua
        from asyncua.server.user_managers import UserManager

        users = self.users

        class Users(UserManager):
            def get_user(self, iserver, username=None, password=None, certificate=None):
                from asyncua.crypto.permission_rules import User, UserRole

                if users and username in users and users[username] == password:
                    return User(role=UserRole.Admin)  # the test's only user reads, subscribes and writes
                return None

        server = Server(user_manager=Users()) if users else Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        if self.secure:
            await server.load_certificate(self.secure[0], format="pem")
            await server.load_private_key(self.secure[1], format="pem")
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if users:
            server.set_security_IDs(["Username"])
        for i in range(shift):
            await server.register_namespace(f"urn:takt:test:other{i}")
        self.index = await server.register_namespace(self.URI)
        obj = await server.nodes.objects.add_object(self.index, "Press")
        self.nodes = {}
        for name, vtype, initial in (("a", ua.VariantType.Double, 1.0), ("b", ua.VariantType.Double, 2.0),
                                      ("y", ua.VariantType.Float, 0.0)):  # fmt: skip
            node = await obj.add_variable(ua.NodeId(f"Press.{name}", self.index), name, ua.Variant(initial, vtype))
            await node.set_writable()
            self.nodes[name] = node
        await server.start()
        self.server = server

    def node_id(self, name: str) -> str:
        return f"nsu={self.URI};s=Press.{name}"

    def write(self, name: str, value: float, good: bool = True) -> None:
        from asyncua import ua

        async def go() -> None:
            status = ua.StatusCode(ua.StatusCodes.Good if good else ua.StatusCodes.BadSensorFailure)
            await self.nodes[name].write_value(ua.DataValue(ua.Variant(value, ua.VariantType.Double), status))

        self.loop.call(go())

    def read(self, name: str) -> tuple[Any, Any]:
        async def go() -> tuple[Any, Any]:
            dv = await self.nodes[name].read_data_value(raise_on_bad_status=False)
            return dv.Value.Value, dv.StatusCode

        return self.loop.call(go())

    def stop(self) -> None:
        if self.server is not None:
            self.loop.call(self.server.stop())
            self.server = None

    def restart(self, shift: int = 0) -> None:
        self.stop()
        self.loop.call(self._start(shift))


class ModbusServer:
    """pymodbus TCP server (device id `unit`) with `size` coils, inputs and registers from address 0;
    addresses beyond answer with Modbus exception responses. Values written survive a restart."""

    def __init__(self, loop: LoopThread, unit: int = 3, size: int = 200) -> None:
        from pymodbus.simulator import DataType, SimData, SimDevice

        self.loop, self.unit = loop, unit
        self.port = free_port()
        bits = [SimData(address=0, count=size, values=False, datatype=DataType.BITS)]
        regs = [SimData(address=0, count=size, values=0, datatype=DataType.REGISTERS)]
        self.device = SimDevice(id=unit, simdata=(bits, list(bits), regs, list(regs)))
        self.written: list[tuple[int, int, list[int]]] = []
        self.server: Any = None
        self.task: Any = None
        self.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        from pymodbus.server import ModbusTcpServer

        async def go() -> None:
            self.server = ModbusTcpServer(self.device, address=("127.0.0.1", self.port))
            for fc, address, registers in self.written:
                await self.server.context.async_setValues(self.unit, fc, address, registers)
            self.task = asyncio.ensure_future(self.server.serve_forever())

        self.loop.call(go())
        wait_port(self.port)

    def set(self, kind: str, address: int, registers: list[int]) -> None:
        fc = {"hr": 16, "ir": 4}[kind]
        self.written.append((fc, address, registers))

        async def go() -> None:
            await self.server.context.async_setValues(self.unit, fc, address, registers)

        self.loop.call(go())

    def get(self, kind: str, address: int, count: int) -> list[int]:
        """Registers ("hr") or coils ("co", as 0/1) as the server holds them now (what a PLC would read)."""
        fc = {"hr": 3, "co": 1}[kind]

        async def go() -> list[int]:
            return [int(v) for v in await self.server.context.async_getValues(self.unit, fc, address, count)]

        return self.loop.call(go())

    def stop(self) -> None:
        if self.server is not None:
            self.loop.call(self.server.shutdown())
            self.server = None


MLFLOW_SERVER = Path(__file__).resolve().parent.parent / ".ci/mlflow-venv/bin/mlflow"  # .ci/tools.sh installs it


class MlflowServer:
    """`mlflow server` on 127.0.0.1: a sqlite backend and a local artifact root under `workdir`, artifacts
    served by the server itself (clients never touch the directory)."""

    def __init__(self, workdir: Path) -> None:
        if not MLFLOW_SERVER.exists():
            pytest.skip("mlflow server is not installed (.ci/tools.sh installs it into .ci/mlflow-venv)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(MLFLOW_SERVER), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
            "--artifacts-destination", str(workdir / "artifacts"),
        ]  # fmt: skip
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "MLFLOW_HOME": str(workdir)}
        self.log = (workdir / "server.log").open("wb")
        # its own session: `mlflow server` runs gunicorn, whose master and workers must all stop with it
        self.proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 120  # the first start migrates the sqlite schema
        while self.proc.poll() is None and time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise AssertionError((workdir / "server.log").read_text()[-3000:])

    def stop(self) -> None:
        """The whole process group: the server, gunicorn's master and its workers."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever of the group did not stop in time
        self.proc.wait()
        self.log.close()
