"""`takt-runner --config runner.json [--http-port N]`: start, serve, stop on SIGTERM.

Exit codes: 0 stopped by a signal; 2 the config cannot run (contract version, secret, model
digest, unsupported protocol, port in use) — one line on stderr naming the field; 1 an
unexpected failure, also one line, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from runner.errors import EXIT_OK, EXIT_RUNTIME, StartError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="takt-runner", description="Run one takt bundle's model on live data.")
    p.add_argument("--config", required=True, type=Path, help="the bundle's runner.json")
    p.add_argument("--http-port", type=int, default=8080, help="health, inference and metrics port (0: any free)")
    p.add_argument("--http-host", default="0.0.0.0", help="address to listen on")
    p.add_argument("--shadow", type=Path, help="a shadow entry (shadow.json): run its challenger beside the model")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


async def _serve(args: argparse.Namespace) -> None:
    from runner.app import Runner, Settings

    runner = Runner.build(Settings(args.config, args.http_host, args.http_port, dict(os.environ), args.shadow))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logging.getLogger("takt.runner").info(
        "runner for %s: model %s %s, %d source(s), %d output(s)",
        runner.config.deployment, runner.model.name, runner.model.version, len(runner.sources), len(runner.outputs),
    )  # fmt: skip
    await runner.run(stop)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if not 0 <= args.http_port <= 65535:
        print("takt-runner: --http-port must be 0..65535", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=args.log_level, format="takt-runner: %(message)s", stream=sys.stderr)
    for noisy in ("asyncua", "pymodbus", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    try:
        asyncio.run(_serve(args))
    except StartError as exc:
        print(f"takt-runner: cannot start: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 - the one place a failure becomes an exit code and one line
        print(f"takt-runner: failed: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
        sys.exit(EXIT_RUNTIME)
    sys.exit(EXIT_OK)


if __name__ == "__main__":
    main()
