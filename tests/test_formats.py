"""Every output format, parsed back and checked against what its consumer requires."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest

from compiler.diagnostics import Diagnostic, Location, Severity
from compiler.loader.source import SourceText
from compiler.report.formats import Report, render
from compiler.report.text import render_text


def _report() -> Report:
    src = SourceText(None, "specs/a.yaml", "kind: Model\nspec:\n  endpiont: x, y\n")  # type: ignore[arg-type]
    diags = [
        Diagnostic(
            "TAKT1004",
            Severity.ERROR,
            "unknown field 'endpiont'",
            Location("specs/a.yaml", 3, 3, 3, 11),
            "did you mean 'endpoint'?",
            "spec.endpiont",
            (Location("specs/b.yaml", 1, 1),),
        ),
        Diagnostic("TAKT2002", Severity.WARNING, "50% done,\nnext: line", Location("specs/a.yaml", 1, 1, 1, 5)),
        Diagnostic("TAKT9001", Severity.WARNING, "no takt.yaml", Location("specs")),
    ]
    return Report("validate", diags, ["specs/a.yaml", "specs/ok.yaml"], 2, 1, {"specs/a.yaml": src})


def test_text_shows_source_line_and_caret_under_the_node():
    text = render_text(_report().diagnostics, _report().sources, _report().summary()).plain
    lines = text.splitlines()
    i = lines.index("specs/a.yaml:3:3: error TAKT1004 unknown field 'endpiont'  [spec.endpiont]")
    assert lines[i + 1] == "    3 |   endpiont: x, y"
    assert lines[i + 2] == "      |   ^^^^^^^^"
    assert lines[i + 3] == "  hint: did you mean 'endpoint'?"
    assert text.rstrip().endswith("✖ 1 error, 2 warnings in 2 files, 2 documents (1 silenced)")


def test_text_never_echoes_a_line_holding_a_secret():
    src = SourceText(None, "a.yaml", "password: hunter2\n")  # type: ignore[arg-type]
    d = [
        Diagnostic("TAKT1010", Severity.ERROR, "field 'password' holds a literal secret", Location("a.yaml", 1, 11)),
        Diagnostic("TAKT1004", Severity.ERROR, "unknown field 'password'", Location("a.yaml", 1, 1)),
    ]
    assert "hunter2" not in render_text(d, {"a.yaml": src}, "").plain


def test_json_contract():
    doc = json.loads(render("json", _report()))
    assert doc["summary"] == {"errors": 1, "warnings": 2, "infos": 0, "files": 2, "documents": 2, "silenced": 1}
    first = doc["diagnostics"][0]
    assert first == {
        "code": "TAKT1004",
        "severity": "error",
        "message": "unknown field 'endpiont'",
        "hint": "did you mean 'endpoint'?",
        "path": "spec.endpiont",
        "file": "specs/a.yaml",
        "line": 3,
        "column": 3,
        "endLine": 3,
        "endColumn": 11,
        "related": [{"file": "specs/b.yaml", "line": 1, "column": 1, "endLine": 0, "endColumn": 0}],
    }


def test_sarif_has_what_code_scanning_requires():
    doc = json.loads(render("sarif", _report()))
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["TAKT1004", "TAKT2002", "TAKT9001"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        phys = result["locations"][0]["physicalLocation"]
        assert not phys["artifactLocation"]["uri"].startswith("/")
        if "region" in phys:
            region = phys["region"]
            assert region["startLine"] >= 1 and region["startColumn"] >= 1
            assert (region["endLine"], region["endColumn"]) > (region["startLine"], region["startColumn"])
    assert "region" not in run["results"][2]["locations"][0]["physicalLocation"]  # file-level finding
    assert run["results"][0]["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "specs/b.yaml"


def test_junit_one_case_per_file():
    root = ET.fromstring(render("junit", _report()))
    suite = root.find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"specs", "specs/a.yaml", "specs/ok.yaml"}
    assert suite.get("tests") == "3" and suite.get("failures") == "1"
    assert cases["specs/a.yaml"].find("failure").get("type") == "TAKT1004"
    assert cases["specs/ok.yaml"].find("failure") is None
    assert "TAKT2002" in cases["specs/a.yaml"].find("system-out").text


def test_github_workflow_commands_are_escaped():
    lines = render("github", _report()).splitlines()
    assert lines[0] == (
        "::error file=specs/a.yaml,line=3,col=3,endLine=3,endColumn=11,"
        "title=TAKT1004 Unknown field::unknown field 'endpiont'%0Ahint: did you mean 'endpoint'?"
    )
    assert lines[1].startswith("::warning file=specs/a.yaml,line=1,col=1,")
    assert lines[1].endswith("::50%25 done,%0Anext: line")
    assert lines[2] == "::warning file=specs,title=TAKT9001 No takt.yaml project file::no takt.yaml"


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "github", "text"])
def test_empty_reports_are_well_formed(fmt: str):
    out = render(fmt, Report("validate", [], ["a.yaml"], 1))
    if fmt in ("json", "sarif"):
        json.loads(out)
    elif fmt == "junit":
        assert ET.fromstring(out).find("testsuite").get("failures") == "0"
    else:
        assert "0 errors" in out
