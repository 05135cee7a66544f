"""Hostile YAML gets a located diagnostic, never a crash; good YAML keeps exact positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.loader.source import inline_ignores, read_source
from compiler.loader.yamldoc import MAX_ALIAS_EXPANSION, SourceText, load_documents


def load(text: str):
    return load_documents(SourceText(Path("f.yaml"), "f.yaml", text))


def one_diag(text: str):
    _, diags = load(text)
    assert len(diags) == 1, diags
    return diags[0]


def test_positions_of_keys_and_values_are_exact():
    docs, diags = load("a: 1\nlist:\n  - x\n  - {k: v}\n")
    assert not diags
    doc = docs[0]
    assert doc.data == {"a": 1, "list": ["x", {"k": "v"}]}
    assert (doc.values[("a",)].line, doc.values[("a",)].column) == (1, 4)
    assert (doc.keys[("list",)].line, doc.keys[("list",)].column) == (2, 1)
    assert (doc.values[("list", 1, "k")].line, doc.values[("list", 1, "k")].column) == (4, 9)
    # a missing path falls back to its nearest ancestor
    assert doc.locate(("list", 1, "nope")).line == 4


def test_multi_document_files_keep_document_index_and_skip_empty_documents():
    docs, diags = load("---\n---\na: 1\n---\nb: 2\n---\n")
    assert not diags
    assert [d.data for d in docs] == [{"a": 1}, {"b": 2}]
    assert docs[1].span.line == 5


def test_yaml_12_semantics_no_norway_problem():
    docs, _ = load("country: no\nflag: yes\nversion: 1.20\nhex: 0x1F\ndate: 2026-01-01\n")
    assert docs[0].data == {"country": "no", "flag": "yes", "version": 1.2, "hex": 31, "date": "2026-01-01"}


def test_syntax_error_is_located():
    d = one_diag("a: [1, 2\nb: 3\n")
    assert d.code == "TAKT0001"
    assert d.location.line == 2
    assert "YAML syntax error" in d.message


def test_documents_before_a_syntax_error_are_kept():
    docs, diags = load("a: 1\n---\nb: [\n")
    assert [d.data for d in docs] == [{"a": 1}]
    assert [d.code for d in diags] == ["TAKT0001"]


def test_duplicate_key_names_first_occurrence():
    d = one_diag("a: 1\nb: 2\na: 3\n")
    assert d.code == "TAKT0002"
    assert (d.location.line, d.location.column) == (3, 1)
    assert "line 1" in d.message


def test_duplicate_key_nested():
    d = one_diag("spec:\n  x: 1\n  x: 2\n")
    assert (d.code, d.location.line, d.location.column) == ("TAKT0002", 3, 3)


def test_tab_indentation():
    d = one_diag("a:\n\tb: 1\n")
    assert (d.code, d.location.line, d.location.column) == ("TAKT0003", 2, 1)


def test_tab_inside_a_value_is_fine():
    docs, diags = load('a: "x\\ty"\nb: c\td\n')
    assert not diags
    assert docs[0].data["b"] == "c\td"


@pytest.mark.parametrize("tag", ["!!python/object:os.system", "!!python/name:os.system", "!custom", "!!binary"])
def test_arbitrary_tags_are_refused(tag: str):
    d = one_diag(f"a: {tag} x\n")
    assert d.code == "TAKT0007"
    assert d.location.line == 1


def test_tags_on_collections_are_refused():
    assert one_diag("a: !!set {x: null}\n").code == "TAKT0007"
    assert one_diag("a: !!omap [x: 1]\n").code == "TAKT0007"


def test_explicit_standard_tags_are_fine():
    docs, diags = load('a: !!str 123\nb: !!int "7"\n')
    assert not diags
    assert docs[0].data == {"a": "123", "b": 7}


def test_alias_bomb_is_refused_quickly():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):  # 10^9 nodes if expanded
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    d = one_diag("\n".join(lines) + "\n")
    assert d.code == "TAKT0006"
    assert f"{MAX_ALIAS_EXPANSION:,}" in d.message


def test_recursive_alias_is_refused():
    assert one_diag("a: &x [1, *x]\n").code == "TAKT0006"


def test_moderate_aliases_and_merge_keys_work():
    docs, diags = load("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\nl: [*b, *b]\n")
    assert not diags
    assert docs[0].data["d"] == {"x": 1, "y": 3}
    assert docs[0].data["l"] == [{"x": 1, "y": 2}] * 2


def test_merge_of_a_scalar_is_refused():
    assert one_diag("a: &s 1\nb:\n  <<: *s\n").code == "TAKT0010"


def test_complex_keys_are_refused():
    assert one_diag("? [a, b]\n: 1\n").code == "TAKT0013"  # split from TAKT0008


def test_control_characters_are_refused_with_position():
    d = one_diag("a: ok\nb: x\x07y\n")
    assert d.code == "TAKT0001"
    assert d.location.line == 2


def test_deep_nesting_does_not_crash():
    d = one_diag("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert (d.code, d.location.line, d.location.column) == ("TAKT0012", 1, 516)


def test_non_utf8_is_located(tmp_path: Path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes("a: 1\nname: Mühle\n".encode("latin-1"))
    d = read_source(p, "latin1.yaml")
    assert not isinstance(d, SourceText)
    assert (d.code, d.location.line, d.location.column) == ("TAKT0004", 2, 8)


def test_utf16_is_refused(tmp_path: Path):
    p = tmp_path / "u16.yaml"
    p.write_bytes("a: 1\n".encode("utf-16"))
    d = read_source(p, "u16.yaml")
    assert getattr(d, "code", None) == "TAKT0004"


def test_bom_is_accepted(tmp_path: Path):
    p = tmp_path / "bom.yaml"
    p.write_bytes(b"\xef\xbb\xbfa: 1\n")
    src = read_source(p, "bom.yaml")
    assert isinstance(src, SourceText)
    assert load_documents(src)[0][0].data == {"a": 1}


def test_huge_file_is_refused_without_reading_it(tmp_path: Path):
    p = tmp_path / "big.yaml"
    p.write_bytes(b"a: " + b"x" * 5000 + b"\n")
    d = read_source(p, "big.yaml", max_bytes=1024)
    assert getattr(d, "code", None) == "TAKT0005"


def test_unreadable_path_is_a_diagnostic(tmp_path: Path):
    d = read_source(tmp_path / "missing.yaml", "missing.yaml")
    assert getattr(d, "code", None) == "TAKT0009"


def test_inline_ignore_comments_by_line():
    found = inline_ignores("a: 1  # takt: ignore[TAKT2002]\nb: 2\nc: 3 #takt: ignore[takt4010, TAKT1004]\n")
    assert found == {1: frozenset({"TAKT2002"}), 3: frozenset({"TAKT4010", "TAKT1004"})}


def test_yaml_12_plain_scalars_with_colons_in_flow_mappings():
    """libyaml (the fast C path) refuses these; YAML 1.2 allows them, so takt must too."""
    docs, diags = load("out: {url: http://plc:4840/x, node: nsu=http://a/;s=B}\n")
    assert not diags
    assert docs[0].data == {"out": {"url": "http://plc:4840/x", "node": "nsu=http://a/;s=B"}}
    assert docs[0].values[("out", "node")].column == 37


def test_duplicate_key_keeps_the_document_and_a_refused_document_keeps_its_neighbours():
    docs, diags = load("a: 1\na: 2\nb: 3\n---\nc: !!python/object x\n---\nd: 4\n")
    assert [d.data for d in docs] == [{"a": 1, "b": 3}, {"d": 4}]
    assert [(d.code, d.location.line) for d in diags] == [("TAKT0002", 2), ("TAKT0007", 5)]


@pytest.mark.parametrize("text", ["a: 'x\ty'\n", "a: [1,\t2]\n", "# a\tcomment\na: 1\n", "kind\t: Model\n"])
def test_tabs_inside_quotes_flow_and_comments_stay_valid(text: str):
    """YAML 1.2 allows tabs as separation (not as indentation): libyaml reads these, and so does takt."""
    docs, diags = load(text)
    assert diags == [] and len(docs) == 1


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: !<tag:yaml.org,2002:%73tr> 12\n", "12"),  # a percent-encoded standard tag is that tag
        ("a: !<tag:yaml.org,2002:int> 12\n", 12),
        ("a: !!str 12\n", "12"),
    ],
)
def test_tags_read_by_the_fast_path_mean_what_ruamel_decodes_them_to(text: str, value: object):
    docs, diags = load(text)
    assert not diags
    assert docs[0].data == {"a": value}


def test_threat_a_percent_encoded_foreign_tag_is_refused_like_the_plain_one():
    d = one_diag("a: !<tag:yaml.org,2002:python/name:os.%73ystem> x\n")
    assert d.code == "TAKT0007"
    assert "os.system" in d.message
