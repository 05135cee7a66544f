"""Rendering diagnostics for people and machines: text, JSON, SARIF 2.1.0, JUnit XML, GitHub."""

from __future__ import annotations

from compiler.report.formats import FORMATS, render

__all__ = ["FORMATS", "render"]
