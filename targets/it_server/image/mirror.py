"""Print `<uri> <keyring>` of this machine's apt source for Debian `suite` (main), read from its apt
configuration, so that no mirror host is written in the recipe. Usage: mirror.py SUITE."""

from __future__ import annotations

import glob
import re
import sys
from pathlib import Path

_ONE_LINE = re.compile(r"^deb\s+(?:\[(?P<opts>[^]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)\s*(?P<comps>.*)$")


def _deb822(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields:
            stanzas.append(fields)
    return stanzas


def sources() -> list[tuple[str, list[str], list[str], str]]:
    """(uri, suites, components, keyring) of every `deb` source configured."""
    found: list[tuple[str, list[str], list[str], str]] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for s in _deb822(Path(path).read_text()):
            if "deb" in s.get("types", "").split() and s.get("enabled", "yes") != "no":
                for uri in s.get("uris", "").split():
                    found.append((uri, s.get("suites", "").split(), s.get("components", "").split(),
                                  s.get("signed-by", "")))  # fmt: skip
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        if not Path(path).exists():
            continue
        for line in Path(path).read_text().splitlines():
            m = _ONE_LINE.match(line.strip())
            if m:
                opts = dict(o.split("=", 1) for o in (m["opts"] or "").split() if "=" in o)
                found.append((m["uri"], [m["suite"]], m["comps"].split(), opts.get("signed-by", "")))
    return found


def main(argv: list[str]) -> int:
    suite = argv[1]
    for uri, suites, comps, keyring in sources():
        if suite in suites and "main" in comps:
            print(uri.rstrip("/"), keyring or "/usr/share/keyrings/debian-archive-keyring.gpg")
            return 0
    print(f"mirror.py: no apt source for {suite} main in /etc/apt", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
