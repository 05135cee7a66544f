"""What /proc says of a process: running or not, and which group it is in. A zombie counts as gone: it holds
no file and writes nothing, and this VM's init reaps orphans only about a second after they exit."""

from __future__ import annotations

from pathlib import Path


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of `pid`, None when there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[2])


def running(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in "ZX"


def running_in_group(pgid: int) -> list[int]:
    """The processes of group `pgid` that still run."""
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and (s := _stat(int(p.name)))
            and s[0] not in "ZX" and s[1] == pgid]  # fmt: skip
