"""Counted words in output: '1 bundle', '2 bundles' (a first user notices '1 bundles')."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else many or word + 's'}"
