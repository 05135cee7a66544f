"""Exit codes as a contract, and the typed errors that carry theirs (the CLI never reads message text)."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from compiler.diagnostics import Diagnostic
    from compiler.validate.pipeline import ValidationResult


class ExitCode(IntEnum):
    OK = 0
    FINDINGS = 1
    """Spec errors, a failed gate or test, a deploy repo that cannot be read or written."""
    USAGE = 2
    """Bad options, missing settings, unusable keys, unknown revisions."""
    ABORTED = 3
    """`takt rollout promote` aborted a rollout in this run."""


class CommandError(Exception):
    """A command that cannot go on; `exit_code` says how the process ends."""

    exit_code: ClassVar[ExitCode] = ExitCode.USAGE


class UsageError(CommandError):
    """Options or takt.yaml settings that do not make a command: a missing deploy repo, a bad flag value."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, option: str = "") -> None:
        super().__init__(f"{option}: {message}" if option else message)
        self.option = option


class Failed(CommandError):
    """The command ran and failed: a deploy repo unreachable, a reader refused."""

    exit_code = ExitCode.FINDINGS


class SpecErrors(CommandError):
    """Validation found errors: the command does nothing; the CLI prints them at their locations."""

    exit_code = ExitCode.FINDINGS

    def __init__(self, result: ValidationResult, errors: list[Diagnostic], command: str) -> None:
        super().__init__(f"takt {command}: fix the spec errors above first")
        self.result, self.errors, self.command = result, errors, command
