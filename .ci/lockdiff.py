"""Print how the installed packages differ from a lock file (`make test-latest` says what it tests)."""

from __future__ import annotations

import re
import sys
from importlib.metadata import distributions
from pathlib import Path

_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> dict[str, str]:
    found = (_PIN.match(line) for line in lock.read_text(encoding="utf-8").splitlines())
    return {_norm(m[1]): m[2] for m in found if m}


def main(lock: Path) -> int:
    locked = pins(lock)
    installed = {_norm(d.metadata["Name"]): d.version for d in distributions()}
    changed = [f"{n} {locked[n]} -> {v}" for n, v in sorted(installed.items()) if n in locked and locked[n] != v]
    extra = [f"{n} {v}" for n, v in sorted(installed.items()) if n not in locked and n != "takt"]
    print(f"installed vs {lock.name}: {len(changed)} newer or other versions, {len(extra)} packages not in the lock")
    for line in changed + [f"{e} (not in the lock)" for e in extra]:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock")))
