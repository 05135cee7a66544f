"""Why a runner cannot start: typed, with the exit code the CLI turns it into."""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1  # an unexpected failure after start (never a traceback: the CLI prints the reason)
EXIT_CONFIG = 2  # the config cannot run: contract version, secret, model digest, unsupported feature


class StartError(Exception):
    """The config cannot run as given; `what` names the field or file at fault."""

    exit_code = EXIT_CONFIG

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what, self.reason = what, reason
