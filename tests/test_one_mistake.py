"""One mistake, one message: a file that does not parse is its own finding, not a cascade elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.validate.pipeline import validate
from tests.conftest import copy_example

BREAKS = {
    "flow": lambda t: t.replace("protocol: opcua", "protocol: [opcua", 1),
    "tab": lambda t: t.replace("\n  protocol: opcua", "\n\tprotocol: opcua", 1),
    "deep": lambda t: t + "\nx: " + "[" * 2000 + "]" * 2000 + "\n",
    "dedent": lambda t: t.replace("\n    mode: SignAndEncrypt", "\nmode: SignAndEncrypt", 1),
}


@pytest.fixture
def example(tmp_path: Path) -> Path:
    dst = tmp_path / "spec"
    copy_example("press-line-anomaly", dst)
    return dst


@pytest.mark.parametrize("how", sorted(BREAKS))
def test_a_file_that_does_not_parse_is_the_only_finding(example: Path, how: str):
    src = example / "specs/datasources.yaml"
    src.write_text(BREAKS[how](src.read_text()))
    diags = validate(example).diagnostics
    errors = [d for d in diags if d.severity.label == "error"]
    assert [d.location.file.endswith("datasources.yaml") for d in errors] == [True], [
        f"{d.code} {d.location} {d.message}" for d in errors
    ]
    assert errors[0].code in ("TAKT0001", "TAKT0003", "TAKT0012")


def test_references_to_names_not_in_the_broken_file_are_still_reported(example: Path):
    src = example / "specs/datasources.yaml"
    src.write_text(BREAKS["flow"](src.read_text()).replace("name: press-vibration", "name: press-vib-2"))
    diags = validate(example).diagnostics
    assert diags[0].code == "TAKT0001"  # the syntax error comes first, whatever the file names
    missing = [d for d in diags if d.code == "TAKT3001"]
    assert missing and all("press-vibration" in d.message for d in missing)
    assert {d.path for d in missing} >= {"spec.bindings[0].source"}


def test_reading_errors_come_first_in_every_report(example: Path):
    (example / "specs/aaa.yaml").write_text("apiVersion: takt/v1\nkind: Device\nmetadata: {name: x}\nspec: {}\n")
    (example / "specs/zzz.yaml").write_text("a: [\n")
    diags = validate(example).diagnostics
    assert diags[0].code == "TAKT0001" and diags[0].location.file.endswith("zzz.yaml")


def test_a_key_dedented_to_column_one_is_pointed_at(example: Path):
    src = example / "specs/datasources.yaml"
    text = src.read_text()
    lines = text.splitlines()
    n = next(i for i, line in enumerate(lines) if line == "    mode: SignAndEncrypt")
    src.write_text(BREAKS["dedent"](text))
    d = validate(example).diagnostics[0]
    assert (d.code, d.location.line, d.location.column) == ("TAKT0001", n + 1, 1)
    assert "'mode'" in d.message
