"""One device-id rule for the spec, the deploy branch, the status ref and the agent's `--device`
(compiler/bundle/deviceid.py): what one accepts, every other accepts, and nothing that climbs out of
`devices/` or breaks `refs/takt/status/<id>` gets through any of them."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import agent_group
from compiler.bundle.deviceid import DEVICE_ID_MAX, device_id_problem, is_device_id
from tests.conftest import BASE, only

SAMPLES = [
    "ipc-1",
    "A.b_c-9",
    "x" * DEVICE_ID_MAX,
    "x" * (DEVICE_ID_MAX + 1),
    "",
    "-lead",
    ".hidden",
    "a..b",
    "..",
    "a/b",
    "../../x",
    "line.lock",
    "ends.",
    "sp ace",
    "tab\t",
    "trail\n",
    "ümlaut",
]


def _ref_ok(component: str) -> bool:
    """Git's own verdict on `refs/takt/status/<component>`."""
    r = subprocess.run(["git", "check-ref-format", f"refs/takt/status/{component}"], capture_output=True)
    return r.returncode == 0


@pytest.mark.parametrize("value", SAMPLES)
def test_an_accepted_id_is_a_path_segment_and_a_ref_git_accepts(value: str):
    if is_device_id(value):
        assert "/" not in value and value not in (".", "..") and len(value) <= DEVICE_ID_MAX
        assert _ref_ok(value), value
        assert device_id_problem(value) is None
    else:
        assert device_id_problem(value)


def test_the_bounds_are_exact():
    assert DEVICE_ID_MAX == 128  # the README's and the schema's figure: ids of deployed fleets depend on it
    assert is_device_id("x" * 128) and not is_device_id("x" * 129)
    assert is_device_id("a.b") and not is_device_id("a..b") and not is_device_id("a.lock") and is_device_id("a.locks")


def _fleet(id_field: str) -> str:
    return textwrap.dedent(str(BASE["fleet.yaml"])).replace("spec: {target: ipc}", f"spec: {{target: ipc, {id_field}}}")


def test_each_refusal_says_its_own_reason():
    for value in ("a/b", "", "-lead", "x" * 129, "ümlaut"):
        assert "letters, digits" in str(device_id_problem(value)), value
    for value in ("a..b", "line.lock", "ends."):
        assert "Git ref component" in str(device_id_problem(value)), value


@pytest.mark.parametrize("value", ["a..b", "line.lock", "ends.", "x" * (DEVICE_ID_MAX + 1), "-lead"])
def test_the_spec_refuses_what_the_agent_refuses_at_the_id(repo, value: str):
    fleet = _fleet(f'id: "{value}"')
    assert f'id: "{value}"' in fleet
    d = only(repo({"fleet.yaml": fleet}), "TAKT1007")
    line = next(n for n, text in enumerate(fleet.splitlines(), 1) if f'id: "{value}"' in text)
    assert (Path(d.location.file).name, d.location.line) == ("fleet.yaml", line), d
    assert "device id" in d.message, d.message


def test_the_spec_accepts_an_id_the_agent_accepts(repo):
    fleet = _fleet("id: Press.7_b")
    assert not [d for d in repo({"fleet.yaml": fleet}).diagnostics if d.severity.name == "ERROR"]


@pytest.mark.parametrize("value", ["../../x", "a/b", "a..b", "x.lock"])
def test_threat_an_agent_device_id_that_climbs_out_is_refused_before_anything_is_written(tmp_path: Path, value: str):
    key = tmp_path / "pub.pem"
    key.write_text("not read: the id is refused first\n")
    state = tmp_path / "state"
    r = CliRunner().invoke(
        agent_group,
        ["run", "--device", value, "--repo", str(tmp_path / "nowhere"), "--branch", "deploy", "--trust", str(key),
         "--state-dir", str(state), "--once"],
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "Invalid value for '--device'" in r.output and repr(value) in r.output
    assert not state.exists()
