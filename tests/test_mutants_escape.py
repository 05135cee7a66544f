"""The render escapers, byte for byte, and systemd's own unquoting of what systemd_quote writes.

A structural check (one [Service], no extra keys, `systemd-analyze verify` clean) still passes when `$` or `%`
is no longer doubled; these assert the exact text, so each escape rule fails a test when it is weakened.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.render.escape import c_identifier, c_string, systemd_quote, systemd_text, to_json, to_yaml


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("$HOME ${PATH}", '"$$HOME $${PATH}"'),
        ("%n %%", '"%%n %%%%"'),
        ("a\nb", '"a\\nb"'),
        ("\x00\x01\x1f", '"\\x00\\x01\\x1f"'),
        (" ~\x7f\x80é", '" ~\\x7f\x80é"'),
        (42, '"42"'),
    ],
)
def test_systemd_quote_exactly(value: object, quoted: str):
    assert systemd_quote(value) == quoted


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("Press line 1", "Press line 1"),
        ("100% %n", "100%% %%n"),
        ("a\\b", "a\\\\b"),
        ("a\nb\x1fc\x7fd", "a b c d"),
        (" ~\x80é$", "~\x80é$"),  # `$` means nothing in free text; the outer blanks are stripped
        ("\n x \t", "x"),
    ],
)
def test_systemd_text_exactly(value: str, text: str):
    assert systemd_text(value) == text


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("plain", '"plain"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("??=", '"\\?\\?="'),
        (" ~\x1f\x7f", '" ~\\037\\177"'),
        ("é", '"\\303\\251"'),
    ],
)
def test_c_string_exactly(value: str, literal: str):
    assert c_string(value) == literal


@pytest.mark.parametrize(
    ("value", "ident"),
    [("press_1", "press_1"), ("a-b.c", "a_b_c"), ("1x", "_1x"), ("", "_"), ("é9", "_9"), ("_a", "_a")],
)
def test_c_identifier_exactly(value: str, ident: str):
    assert c_identifier(value) == ident


def test_to_json_is_canonical_text():
    assert to_json({"b": [1], "a": "é"}) == '{\n  "a": "é",\n  "b": [\n    1\n  ]\n}\n'
    with pytest.raises(ValueError):
        to_json({"x": math.nan})


def test_to_yaml_keeps_order_block_style_and_long_lines():
    long = "w " * 100
    text = to_yaml({"z": {"k": [1, 2]}, "a": long, "q": "yes"})
    assert text.splitlines()[:4] == ["z:", "  k:", "  - 1", "  - 2"]
    assert YAML(typ="safe").load(text) == {"z": {"k": [1, 2]}, "a": long, "q": "yes"}
    assert len(text.splitlines()) == 6  # the 200-character string is one line, not folded at 80


PROBES = ['a"b', "c\\d", "100% %n %%", "tab\there", "\x01\x1f\x7f", "sp ace", "é ~ ?"]


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed on this machine")
@pytest.mark.parametrize("probe", PROBES)
def test_systemd_unquotes_what_systemd_quote_wrote(tmp_path: Path, probe: str):
    """systemd itself reads the word back: `systemd-analyze verify` prints an executable name it refuses
    after unquoting and specifier expansion, so the name round-trips through systemd's own parser. (`$$` is
    undone later, at exec time, for arguments only; test_systemd_quote_exactly pins it.)"""
    word = "/nonexistent/\x02" + probe  # a control character makes systemd print the name it parsed
    unit = tmp_path / "probe.service"
    unit.write_text(f"[Unit]\nDescription=probe\n[Service]\nExecStart={systemd_quote(word)} arg\n")
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    found = re.search(r"Executable name contains special characters: (.*?)\n[^\n]*probe\.service", r.stderr, re.S)
    assert found, r.stderr
    assert found.group(1) == word


def test_the_unit_template_renders_exact_execstart_arguments():
    from compiler.render.plugins import target_classes

    unit = (
        target_classes()["edge-pc"]
        .templates()
        .get_template("takt-runner.service.j2")
        .render(
            bundle_name="d/t",
            description="100% line\nExecStartPre=/bin/evil",
            user="takt",
            nice=0,
            workdir="/var/lib/takt/current/deployments/d",
            command="/usr/bin/takt-runner",
            config='c $HOME %n "q"\\.json',
            memory_max=None,
            cpu_quota=None,
            http_port=8080,
        )
    )
    lines = unit.splitlines()
    assert (
        'ExecStart=/usr/bin/env "/usr/bin/takt-runner" --config "c $$HOME %%n \\"q\\"\\\\.json" --http-port 8080'
        in lines
    )
    assert "Description=100%% line ExecStartPre=/bin/evil" in lines


def test_to_yaml_folds_a_line_only_past_4096_columns():
    """`k: ` and 4091 characters end at column 4094, a blank and `b` fit the 4096 width: one line; one more
    character and the dumper folds at the blank. Pins the width itself, not just "longer than 80"."""
    assert to_yaml({"k": "a" * 4091 + " b"}).count("\n") == 1
    assert to_yaml({"k": "a" * 4092 + " b"}).count("\n") == 2


def test_to_yaml_writes_line_breaks_as_escapes_in_one_double_quoted_scalar():
    """The pure emitter (the one configured) writes a line break inside a value as `\\n` in one double-quoted
    scalar; the C emitter would write a folded single-quoted block, other bytes for the same data."""
    assert to_yaml({"k": "line1\nline2\n"}) == 'k: "line1\\nline2\\n"\n'


# --- which emitter to_yaml takes (escape._c_safe): libyaml's only where it writes ruamel's pure bytes ---------


def test_a_string_takes_the_c_emitter_up_to_its_exact_length_bound() -> None:
    from compiler.render import escape

    assert escape._c_safe("a" * escape._C_SAFE_LENGTH) and not escape._c_safe("a" * (escape._C_SAFE_LENGTH + 1))
    assert escape._C_SAFE_LENGTH == 1000  # libyaml and ruamel agree on plain scalars this long (test_escape_yaml)


@pytest.mark.parametrize("ch", ["'", "\n", "\r", "\x85", "\u2028", "\u2029", "\U00010000", "\U0010ffff"])
def test_each_character_the_emitters_write_differently_takes_the_pure_one(ch: str) -> None:
    from compiler.render import escape

    assert not escape._c_safe(f"a{ch}b") and not escape._c_safe({"k": f"a{ch}"}) and not escape._c_safe([ch])
    assert escape._c_safe("a\tb \ufffd\uffff") and escape._c_safe("")  # the BMP's last, a tab: the same bytes


def _nested(depth: int, leaf: object, kind: str) -> object:
    out = leaf
    for _ in range(depth):
        out = {"k": out} if kind == "dict" else [out] if kind == "list" else (out,)
    return out


@pytest.mark.parametrize("kind", ["dict", "list", "tuple"])
def test_nesting_takes_the_c_emitter_to_its_exact_depth(kind: str) -> None:
    from compiler.render import escape

    assert escape._c_safe(_nested(64, 1, kind)) and not escape._c_safe(_nested(65, 1, kind))


def test_every_key_and_value_of_a_mapping_and_every_item_is_looked_at() -> None:
    from compiler.render import escape

    assert escape._c_safe({"a": 1, "b": [True, None, 1.5, -2, "x"], "c": ()})
    assert not escape._c_safe({"a": 1, "b\n": 2}) and not escape._c_safe({"a": 1, "b": "it's"})
    assert not escape._c_safe({"it's": 1, "b": 2}) and not escape._c_safe({"a": "x", "b": "it's"})
    assert not escape._c_safe([1, "ok", "it's"]) and not escape._c_safe(("ok", "x\ny"))


@pytest.mark.parametrize("value", [b"bytes", {1, 2}, object(), 1j])
def test_anything_but_plain_data_takes_the_pure_emitter(value: object) -> None:
    from compiler.render import escape

    assert not escape._c_safe(value) and not escape._c_safe({"k": value}) and not escape._c_safe([value])


def test_to_yaml_takes_the_emitter_c_safe_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler.render import escape

    taken: list[bool] = []
    real = escape._dumper

    def dumper(pure: bool):  # type: ignore[no-untyped-def]
        taken.append(pure)
        return real(pure)

    monkeypatch.setattr(escape, "_dumper", dumper)
    to_yaml({"k": "plain"})
    to_yaml({"k": "it's"})
    assert taken == [False, True]
    assert real(True) is real(True) and real(True) is not real(False)  # one configured dumper per kind


def test_a_mapping_key_counts_one_level_deeper_like_its_value() -> None:
    """A key is one level below its mapping, as its value is: a tuple key nested to the bound from there is
    still c-safe, one level more is not (the key's depth is counted, not skipped or doubled)."""
    from compiler.render import escape

    assert escape._c_safe({_nested(63, 1, "tuple"): 1}) and not escape._c_safe({_nested(64, 1, "tuple"): 1})
    assert escape._c_safe({"k": _nested(63, 1, "tuple")}) and not escape._c_safe({"k": _nested(64, 1, "tuple")})


def test_a_key_takes_the_c_emitter_up_to_122_characters_of_its_text() -> None:
    """Both emitters write a key of at most 122 bytes as a simple key (test_keys_near_the_simple_key_limit
    compares them there): a string's UTF-8 bytes count, and an integer's decimal digits with its sign."""
    from compiler.render import escape

    assert escape._c_safe({"k" * 122: 1}) and not escape._c_safe({"k" * 123: 1})
    assert escape._c_safe({"é" * 61: 1}) and not escape._c_safe({"é" * 61 + "k": 1})  # bytes, not characters
    assert escape._c_safe({10**122 - 1: 1}) and not escape._c_safe({10**122: 1})  # 122 nines; a 1 and 122 zeros
    assert escape._c_safe({1 - 10**121: 1}) and not escape._c_safe({-(10**121): 1})  # "-" and 121 nines; 122 digits
    assert escape._c_safe({-1: 1, 0: 2, True: 3}) and escape._C_SAFE_KEY == 122


def test_yaml_scalar_answers_for_a_one_line_item_of_up_to_1000_characters() -> None:
    """An item "- " + scalar + "\\n" of at most _MAX_ONE_LINE characters: the scalar then fits on one line at any
    column a block mapping can put it (far below the width of 4096); a longer one is left to to_yaml."""
    from compiler.render import escape

    assert escape.yaml_scalar("a" * 997) == "a" * 997 and escape.yaml_scalar("a" * 998) is None
    assert to_yaml(["a" * 998]) == f"- {'a' * 998}\n"  # one line still: the bound is the answer's, not a fold
    assert escape.yaml_scalar("x\ny") == '"x\\ny"'  # a break in the value is written as an escape: one line
    assert escape._MAX_ONE_LINE == 1000


@pytest.mark.parametrize("brk", ["\n", "\r", "\x85", "\u2028", "\u2029"])
def test_yaml_scalar_refuses_a_line_break_anywhere_in_the_scalar(brk: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What follows a YAML line break is indented for the item's column, not a block value's: a scalar with one
    at its first or last character is not one line either (to_yaml's own items never end so; these are made)."""
    from compiler.render import escape

    for text in (f"- {brk}ab\n", f"- ab{brk}\n", f"- a{brk}b\n"):
        monkeypatch.setattr(escape, "to_yaml", lambda obj, text=text: text)
        escape._yaml_scalar.cache_clear()
        try:
            assert escape.yaml_scalar(f"probe{text!r}") is None
        finally:
            escape._yaml_scalar.cache_clear()
    monkeypatch.setattr(escape, "to_yaml", lambda obj: "- ab\n")
    try:
        assert escape.yaml_scalar("ab") == "ab"
    finally:
        escape._yaml_scalar.cache_clear()


def test_yaml_scalar_remembers_exactly_the_last_4096_scalars(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache is what makes yaml_scalar cheap, and its bound keeps a long-lived process's memory flat: a
    scalar asked again within the last 4096 distinct ones is not asked of ruamel, one asked before them is."""
    from compiler.render import escape

    asked: list[object] = []

    def counted(obj: list[object]) -> str:
        asked.append(obj[0])
        return f"- {obj[0]}\n"

    monkeypatch.setattr(escape, "to_yaml", counted)
    escape._yaml_scalar.cache_clear()
    try:
        assert [escape.yaml_scalar("v"), escape.yaml_scalar("v")] == ["v", "v"] and asked == ["v"]
        for i in range(4095):
            escape.yaml_scalar(f"a{i}")
        escape.yaml_scalar("v")  # the 4096th most recent: still cached
        assert asked.count("v") == 1
        for i in range(4096):
            escape.yaml_scalar(f"b{i}")
        escape.yaml_scalar("v")  # the 4097th: gone
        assert asked.count("v") == 2 and escape._CACHED == 4096
    finally:
        escape._yaml_scalar.cache_clear()
