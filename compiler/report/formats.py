"""Machine formats. Each takes the same inputs and returns the whole document as a string."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any
from xml.etree import ElementTree as ET

from compiler import __version__
from compiler.codes import rule
from compiler.diagnostics import Diagnostic, Location, Severity
from compiler.loader.source import SourceText
from compiler.report.text import render_text
from compiler.report.words import plural

FORMATS = ("text", "json", "sarif", "junit", "github")
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


@dataclass(frozen=True)
class Report:
    command: str
    diagnostics: list[Diagnostic]
    files: list[str]
    documents: int
    silenced: int = 0
    sources: dict[str, SourceText] = field(default_factory=dict)

    def count(self, severity: Severity) -> int:
        return sum(1 for d in self.diagnostics if d.severity == severity)

    def summary(self) -> str:
        e, w, i = (self.count(s) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO))
        parts = [plural(e, "error"), plural(w, "warning")]
        if i:
            parts.append(f"{i} info")
        tail = f" ({self.silenced} silenced)" if self.silenced else ""
        mark = "✖" if e else ("!" if w else "✔")
        where = f"{plural(len(self.files), 'file')}, {plural(self.documents, 'document')}"
        return f"{mark} {', '.join(parts)} in {where}{tail}\n"


def _loc_json(loc: Location) -> dict[str, Any]:
    return {
        "file": loc.file,
        "line": loc.line,
        "column": loc.column,
        "endLine": loc.end_line,
        "endColumn": loc.end_column,
    }


def render_json(r: Report) -> str:
    doc = {
        "version": 1,
        "tool": {"name": "takt", "version": __version__, "command": r.command},
        "summary": {
            "errors": r.count(Severity.ERROR),
            "warnings": r.count(Severity.WARNING),
            "infos": r.count(Severity.INFO),
            "files": len(r.files),
            "documents": r.documents,
            "silenced": r.silenced,
        },
        "diagnostics": [
            {
                "code": d.code,
                "severity": d.severity.label,
                "message": d.message,
                "hint": d.hint,
                "path": d.path,
                **_loc_json(d.location),
                "related": [_loc_json(x) for x in d.related],
            }
            for d in r.diagnostics
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _uri(file: str) -> str:
    return PurePath(file).as_posix()


def _region(loc: Location) -> dict[str, int]:
    region = {"startLine": loc.line, "startColumn": max(loc.column, 1)}
    if loc.end_line >= loc.line and loc.end_column > 0:
        region["endLine"] = loc.end_line
        region["endColumn"] = (
            loc.end_column if (loc.end_line, loc.end_column) > (loc.line, loc.column) else loc.column + 1
        )
    return region


def _physical(loc: Location) -> dict[str, Any]:
    phys: dict[str, Any] = {"artifactLocation": {"uri": _uri(loc.file), "uriBaseId": "%SRCROOT%"}}
    if loc.line > 0:
        phys["region"] = _region(loc)
    return {"physicalLocation": phys}


def render_sarif(r: Report) -> str:
    codes = sorted({d.code for d in r.diagnostics})
    rules = []
    for code in codes:
        ru = rule(code)
        rules.append(
            {
                "id": code,
                "name": "".join(w.capitalize() for w in ru.title.split()),
                "shortDescription": {"text": ru.title},
                "fullDescription": {"text": ru.help or ru.title},
                "help": {"text": ru.help or ru.title},
                "defaultConfiguration": {"level": _SARIF_LEVEL[ru.severity]},
            }
        )
    index = {c: i for i, c in enumerate(codes)}
    results = []
    for d in r.diagnostics:
        text = d.message + (f" (hint: {d.hint})" if d.hint else "")
        result = {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _SARIF_LEVEL[d.severity],
            "message": {"text": text},
            "locations": [_physical(d.location)],
        }
        if d.related:
            result["relatedLocations"] = [{"id": i, **_physical(x)} for i, x in enumerate(d.related)]
        if d.path:
            result["properties"] = {"specPath": d.path}
        results.append(result)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "takt",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": "https://github.com/takt-dev/takt",
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_junit(r: Report) -> str:
    """One test case per file: a file with errors fails, warnings go to its system-out."""
    by_file: dict[str, list[Diagnostic]] = defaultdict(list)
    for d in r.diagnostics:
        by_file[d.location.file].append(d)
    files = sorted(set(r.files) | set(by_file))
    failures = sum(1 for f in files if any(d.severity == Severity.ERROR for d in by_file[f]))
    suites = ET.Element("testsuites", name="takt", tests=str(len(files)), failures=str(failures))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"takt {r.command}",
        tests=str(len(files)),
        failures=str(failures),
        errors="0",
        skipped="0",
    )
    for f in files:
        case = ET.SubElement(suite, "testcase", classname=f"takt.{r.command}", name=f)
        errors = [d for d in by_file[f] if d.severity == Severity.ERROR]
        others = [d for d in by_file[f] if d.severity != Severity.ERROR]
        if errors:
            failure = ET.SubElement(
                case, "failure", type=errors[0].code, message=f"{len(errors)} error(s): {errors[0].message}"
            )
            failure.text = "\n".join(_line(d) for d in errors)
        if others:
            ET.SubElement(case, "system-out").text = "\n".join(_line(d) for d in others)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _line(d: Diagnostic) -> str:
    return f"{d.location}: {d.severity.label} {d.code} {d.message}" + (f" (hint: {d.hint})" if d.hint else "")


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


_GH_CMD = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def render_github(r: Report) -> str:
    """GitHub Actions workflow commands: each finding annotates the pull request diff."""
    lines = []
    for d in r.diagnostics:
        loc = d.location
        props = [f"file={_gh_prop(_uri(loc.file))}"]
        if loc.line > 0:
            props += [f"line={loc.line}", f"col={max(loc.column, 1)}"]
            if loc.end_line == loc.line and loc.end_column > loc.column:
                props += [f"endLine={loc.end_line}", f"endColumn={loc.end_column}"]
        props.append(f"title={_gh_prop(d.code + ' ' + rule(d.code).title)}")
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        lines.append(f"::{_GH_CMD[d.severity]} {','.join(props)}::{_gh_data(message)}")
    lines.append(_gh_data(r.summary().strip()))
    return "\n".join(lines) + "\n"


def render(fmt: str, r: Report) -> str:
    if fmt == "text":
        return render_text(r.diagnostics, r.sources, r.summary()).plain
    return {"json": render_json, "sarif": render_sarif, "junit": render_junit, "github": render_github}[fmt](r)
