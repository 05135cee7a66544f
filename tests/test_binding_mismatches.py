"""Silent mismatches between data-source fields, Modbus registers and model inputs.

The expected verdicts come from independent statements of the rule (numpy's type limits, register
sets), on generated cases.
"""

from __future__ import annotations

import itertools
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import BASE, codes, only

SRC, DEPLOY = BASE["sources.yaml"], BASE["deploy.yaml"]


def position(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of `needle` in the file as written (dedented)."""
    before = textwrap.dedent(text).split(needle)[0]
    return before.count("\n") + 1, len(before.rpartition("\n")[2]) + 1


def with_pres(dtype: str, extra: str = "") -> str:
    return SRC.replace("{name: pres, dtype: float32, unit: bar,", f"{{name: pres, dtype: {dtype}, unit: bar,{extra}")


# --- dtypes of fields bound to a float32 input ---------------------------------------------------------


def test_float64_field_into_float32_is_lossy_without_a_range(repo):
    d = only(repo({"sources.yaml": with_pres("float64")}), "TAKT4004")
    assert d.path == "spec.bindings[0].fields[1]" and d.severity.label == "warning"
    assert (d.location.file, (d.location.line, d.location.column)) == ("deploy.yaml", position(DEPLOY, "pres]"))
    assert "range" in d.hint


@pytest.mark.parametrize(
    ("value_range", "flagged"),
    [("[0, 50]", False), ("[-10, 90]", False), ("[1.7e9, 1.8e9]", True), ("[0, 1.0e+39]", True), ("[5, 5]", True)],
)
def test_a_declared_range_shows_whether_float32_keeps_the_precision(repo, value_range: str, flagged: bool):
    r = repo({"sources.yaml": with_pres("float64", f" range: {value_range},")})
    assert ("TAKT4004" in codes(r)) == flagged, r.diagnostics
    # independently: float32's step at the largest magnitude against a millionth of the range
    lo, hi = (float(x) for x in value_range.strip("[]").split(","))
    with np.errstate(over="ignore"):
        step = float(np.spacing(np.float32(max(abs(lo), abs(hi)))))
    assert flagged == (not np.isfinite(step) or step > (hi - lo) * 1e-6)


def test_bool_field_into_a_float_input_is_takt4018(repo):
    d = only(repo({"sources.yaml": with_pres("bool")}), "TAKT4018")
    assert d.path == "spec.bindings[0].fields[1]" and d.severity.label == "warning"
    assert (d.location.line, d.location.column) == position(DEPLOY, "pres]")
    assert "0 or 1" in d.message


# --- Modbus: the field's dtype holds what the register decodes to ----------------------------------------

DATA_TYPES = ["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
FIELD_DTYPES = [*DATA_TYPES, "int8", "uint8", "float16", "string", "bool"]


def holds(src: str, dst: str) -> bool:
    """Every value of `src` is a value of `dst`, by numpy's limits of the two types."""
    if src == dst:
        return True
    if "string" in (src, dst) or dst == "bool":
        return False
    s, t = np.dtype(src), np.dtype(dst)
    if s.kind in "iu" and t.kind in "iu":
        return np.iinfo(t).min <= np.iinfo(s).min and np.iinfo(s).max <= np.iinfo(t).max
    if s.kind in "iu":
        return int(np.iinfo(s).max).bit_length() <= np.finfo(t).nmant + 1
    if t.kind in "iu":
        return False
    return np.finfo(t).nmant >= np.finfo(s).nmant


MB = """\
    apiVersion: takt/v1
    kind: DataSource
    metadata: {name: mb}
    spec:
      protocol: modbus
      transport: tcp
      endpoint: gw:502
      samplingInterval: 1s
      fields:
    FIELDS
    """


def modbus(*fields: str) -> str:
    return MB.replace("FIELDS", "\n    ".join(f"    - {f}" for f in fields))


def register_field(name: str, dtype: str, address: int, data: str, extra: str = "") -> str:
    address_map = f"{{registerType: holding-register, address: {address}, dataType: {data}{extra}}}"
    return f"{{name: {name}, dtype: {dtype}, address: {address_map}}}"


@pytest.mark.parametrize(("dtype", "data"), list(itertools.product(FIELD_DTYPES, DATA_TYPES)))
def test_field_dtype_against_register_data_type(repo, dtype: str, data: str):
    text = modbus(register_field("a", dtype, 100, data))
    r = repo({"mb.yaml": text})
    found = [d for d in r.diagnostics if d.code == "TAKT2022"]
    assert bool(found) == (not holds(data, dtype)), (dtype, data, r.diagnostics)
    if found:
        assert found[0].path == "spec.fields[0].dtype"
        assert (found[0].location.line, found[0].location.column) == position(text, f"{dtype}, address")


def test_int16_field_on_a_float32_register(repo):
    d = only(repo({"mb.yaml": modbus(register_field("a", "int16", 100, "float32"))}), "TAKT2022")
    assert d.message == "field 'a' is declared int16: the register holds float32, which int16 cannot hold without loss"
    assert d.hint.startswith("declare dtype: float32")


def test_fractional_scale_into_an_integer_field(repo):
    d = only(repo({"mb.yaml": modbus(register_field("a", "int32", 100, "int16", ", scale: 0.1"))}), "TAKT2022")
    assert "truncates" in d.message and d.hint.startswith("declare dtype: float32")


# --- Modbus: overlapping registers ---------------------------------------------------------------------

WORDS = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4}


def test_two_float32_on_3000_and_3001_overlap(repo):
    text = modbus(register_field("a", "float32", 3000, "float32"), register_field("b", "float32", 3001, "float32"))
    d = only(repo({"mb.yaml": text}), "TAKT2023")
    assert d.path == "spec.fields[1].address.address"
    assert (d.location.line, d.location.column) == position(text, "3001")
    assert d.related and (d.related[0].line, d.related[0].column) == position(text, "3000")
    assert "registers 3001..3002" in d.message and "registers 3000..3001" in d.message


def test_bits_of_one_register_do_not_overlap(repo):
    text = modbus(
        register_field("w", "uint16", 10, "uint16"),
        register_field("b0", "bool", 10, "bool", ", bit: 0"),
        register_field("b1", "bool", 10, "bool", ", bit: 1"),
    )
    assert "TAKT2023" not in codes(repo({"mb.yaml": text}))
    clash = modbus(
        register_field("b0", "bool", 10, "bool", ", bit: 0"), register_field("b1", "bool", 10, "bool", ", bit: 0")
    )
    assert only(repo({"mb.yaml": clash}), "TAKT2023").path == "spec.fields[1].address.address"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.sampled_from(sorted(WORDS))), min_size=2, max_size=5))
def test_overlaps_are_exactly_shared_registers(tmp_path_factory, fields):
    from compiler.validate.pipeline import validate
    from tests.conftest import write_repo

    root = tmp_path_factory.mktemp("mb")
    text = modbus(*(register_field(f"f{i}", data, address, data) for i, (address, data) in enumerate(fields)))
    write_repo(root, {"mb.yaml": text})
    flagged = {int(d.path.split("[")[1].split("]")[0]) for d in validate(root).diagnostics if d.code == "TAKT2023"}
    registers = [set(range(a, a + WORDS[t])) for a, t in fields]
    expected = {i for i in range(len(fields)) if any(registers[i] & registers[j] for j in range(i))}
    assert flagged == expected


# --- bindings in the wrong order -------------------------------------------------------------------------


def test_swapped_fields_name_the_order_not_the_units(repo):
    dep = DEPLOY.replace("fields: [temp, pres]", "fields: [pres, temp]")
    r = repo({"deploy.yaml": dep})
    d = only(r, "TAKT4005")
    assert d.path == "spec.bindings[0].fields"
    assert (d.location.line, d.location.column) == position(dep, "[pres, temp]")
    assert "another order" in d.message and "convert at the source" not in d.hint
    assert d.hint == "bind fields: [temp, pres]"


@pytest.mark.parametrize("names", [("t", "p"), ("a", "b")])
def test_order_by_units_when_the_names_differ(repo, names: tuple[str, str]):
    first, second = names
    src = SRC.replace("name: temp,", f"name: {first},").replace("name: pres,", f"name: {second},")
    dep = DEPLOY.replace("fields: [temp, pres]", f"fields: [{second}, {first}]")
    d = only(repo({"sources.yaml": src, "deploy.yaml": dep}), "TAKT4005")
    assert d.hint == f"bind fields: [{first}, {second}]" and d.path == "spec.bindings[0].fields"


def test_unit_mismatch_that_no_order_fixes_stays_a_unit_problem(repo):
    r = repo({"sources.yaml": SRC.replace("unit: bar", "unit: psi")})
    d = only(r, "TAKT4005")
    assert d.path == "spec.bindings[0].fields[1]" and "convert at the source" in d.hint


def test_names_in_another_order_with_the_same_units_is_takt4019(repo):
    src = SRC.replace("unit: bar", "unit: degC")
    model = BASE["model.yaml"].replace("{name: pres, unit: bar}", "{name: pres, unit: degC}")
    dep = DEPLOY.replace("fields: [temp, pres]", "fields: [pres, temp]")
    d = only(repo({"sources.yaml": src, "model.yaml": model, "deploy.yaml": dep}), "TAKT4019")
    assert d.path == "spec.bindings[0].fields" and d.severity.label == "warning"
    assert d.hint == "bind fields: [temp, pres]"
