"""`takt pin` as a request: write each stale sha256 back into its spec, or with `check` only name them
(exit 1 when a digest is stale under `check`, or a digest could not be written)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.commands.errors import ExitCode

if TYPE_CHECKING:
    from compiler.pin import Pin, PinProblem


@dataclass(frozen=True)
class PinRequest:
    path: Path
    """Relative to `cwd`, like every path on the command line."""
    cwd: Path
    check: bool = False


@dataclass(frozen=True)
class PinOutcome:
    pins: list[Pin]
    """The stale digests: written back, or with `check` only found."""
    problems: list[PinProblem]
    check: bool

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FINDINGS if self.problems or (self.check and self.pins) else ExitCode.OK


def run_pin(request: PinRequest) -> PinOutcome:
    """SpecErrors (exit 1) when the specs have errors: digests are only pinned in a valid repo."""
    from compiler.commands.validated import validated
    from compiler.pin import apply_pins, stale_pins

    result = validated(request.cwd / request.path, "pin", check_artifacts=False)
    pins, problems = stale_pins(result)
    if not request.check:
        problems += apply_pins(result, pins)
    return PinOutcome(pins, problems, request.check)
