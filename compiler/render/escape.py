"""Escaping for each output language. Structured outputs (JSON, YAML) are built as data and
serialized; these are for text formats, where a spec value must never become syntax."""

from __future__ import annotations

import functools
import io
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import SafeRepresenter
from ruamel.yaml.resolver import VersionedResolver

from compiler.bundle import jsontext


def to_json(obj: Any) -> str:
    """Canonical JSON text (sorted keys, stable), safe to embed anywhere JSON is expected."""
    return jsontext.dumps(obj)


_STR = "tag:yaml.org,2002:str"
_YAML11 = VersionedResolver(version=(1, 1))  # ruamel's YAML 1.1 rules, the ones Kubernetes' readers follow


class _Representer(SafeRepresenter):
    """ruamel's safe representer, quoting also the strings a YAML 1.1 reader takes for another type.

    The output is YAML 1.2, where `yes`, `on`, `n` and `1:20` are plain strings; but Kubernetes reads
    manifests with a YAML 1.1 parser (sigs.k8s.io/yaml, go-yaml v2), where they are a boolean and a
    number: an annotation `on` would fail to apply, a label value `no` would become `false`. Quoted,
    each reader takes them as the strings they are. Which strings is decided by ruamel's own 1.1 rules."""

    def represent_str(self, data: str) -> Any:
        if _YAML11.resolve(ScalarNode, data, (True, False)) != _STR:
            return self.represent_scalar(_STR, data, style="'")
        return super().represent_str(data)


_Representer.add_representer(str, _Representer.represent_str)


@functools.cache
def _dumper(pure: bool) -> YAML:
    """One configured dumper per process and kind: setting one up costs as much as a small dump."""
    yaml = YAML(typ="safe", pure=pure)  # pure=False: libyaml's emitter when ruamel.yaml.clib is there
    yaml.Representer = _Representer
    yaml.default_flow_style = False
    # keep the renderer's order; ruamel leaves the attribute untyped at its default None, so mypy infers None
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.width = 4096
    return yaml


# Where libyaml's emitter writes other bytes than ruamel's pure one (the reference): quotes, line
# breaks, characters past the BMP, very long scalars. Data with none of them takes the C emitter,
# about three times faster, for the same bytes (tests/test_escape_yaml.py compares both). A lone
# surrogate is written "\uD800" by the pure emitter; libyaml's cannot encode it and raises.
_C_SAFE_LENGTH = 1000
_NOT_C_SAFE = re.compile("['\n\r\x85\u2028\u2029\ud800-\udfff\U00010000-\U0010ffff]")
# A mapping key is written as a simple key ("key: value") or a complex one ("? key"): the pure emitter
# takes a simple key while the key's characters and its "!!str" tag's 5 are under 128, libyaml while
# the key's UTF-8 bytes are at most 128; they agree on keys of at most this many bytes.
_C_SAFE_KEY = 122


def _c_safe(obj: Any, depth: int = 0) -> bool:
    if isinstance(obj, str):
        return len(obj) <= _C_SAFE_LENGTH and _NOT_C_SAFE.search(obj) is None
    if isinstance(obj, dict):
        return depth < 64 and all(_c_safe_key(k, depth + 1) and _c_safe(v, depth + 1) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return depth < 64 and all(_c_safe(v, depth + 1) for v in obj)
    return isinstance(obj, bool | int | float) or obj is None


def _c_safe_key(key: Any, depth: int) -> bool:
    """`_c_safe`, and short enough that both emitters make the same choice of simple or complex key."""
    if not _c_safe(key, depth):
        return False
    if isinstance(key, str):
        return len(key.encode("utf-8")) <= _C_SAFE_KEY
    if isinstance(key, int):  # its decimal text, a sign included
        return bool(-(10 ** (_C_SAFE_KEY - 1)) < key < 10**_C_SAFE_KEY)
    return True


def to_yaml(obj: Any) -> str:
    """YAML from data: every string is emitted by the YAML library, quoted where needed."""
    buf = io.StringIO()
    try:
        _dumper(not _c_safe(obj)).dump(obj, buf)
    except BaseException:
        # ruamel keeps a failed dump's context (its output, the C emitter's state): the next dump of
        # that dumper would write into this buffer and return "" (pure) or raise (libyaml). New ones.
        _dumper.cache_clear()
        raise
    return buf.getvalue()


_MAX_ONE_LINE = 1000  # far below the dumper's width (4096), wherever the scalar starts: never folded
_YAML_BREAK = re.compile("[\n\r\x85\u2028\u2029]")  # YAML's line breaks: what follows one is indented


def yaml_scalar(value: str | int | float | bool) -> str | None:
    """The text `to_yaml` writes for `value` as a block value or sequence item (its quoting and style
    are ruamel's, decided by the scalar alone), or None when that takes more than one line or more than
    _MAX_ONE_LINE characters as an item (a longer one might be folded where a deeper key puts it). Names,
    paths and flags repeat across a fleet's bundles, so the last _CACHED are asked of ruamel once each."""
    # a float's repr in the key: 0.0 == -0.0 (one cache entry, "0.0" for both) but "-0.0" is written
    return _yaml_scalar(value, repr(value) if type(value) is float else None)


_CACHED = 4096  # distinct scalars: bounded, as a long-lived process renders many fleets' values


@functools.lru_cache(maxsize=_CACHED, typed=True)  # typed: True, 1 and 1.0 are written differently
def _yaml_scalar(value: str | int | float | bool, _float_repr: str | None) -> str | None:
    text = to_yaml([value])
    if len(text) > _MAX_ONE_LINE or not text.startswith("- "):
        return None
    scalar = text[2:-1]  # after the item's "- ", before the document's closing line break
    return None if _YAML_BREAK.search(scalar) else scalar


def _control(ch: str) -> bool:
    """C0 controls and DEL: never literal in a unit file (both systemd escapers share this one rule)."""
    return ord(ch) < 0x20 or ord(ch) == 0x7F


# The characters either systemd escaper rewrites (`_control`'s C0 and DEL, and the specials of each):
# text without any is written as it is, without the per-character loop (a unit takes 5 such values).
_TEXT_SPECIAL = re.compile("[%\\\\\x00-\x1f\x7f]")
_QUOTE_SPECIAL = re.compile('[%$"\\\\\x00-\x1f\x7f]')


def systemd_text(value: Any) -> str:
    """A free-text unit setting (Description=): no line breaks, specifiers and escapes neutralised."""
    text = str(value)
    if not _TEXT_SPECIAL.search(text):
        return text.strip()
    out = []
    for ch in text:
        if ch == "%":
            out.append("%%")
        elif ch == "\\":
            out.append("\\\\")
        elif _control(ch):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out).strip()


def systemd_quote(value: Any) -> str:
    """One ExecStart= argument, double-quoted: systemd's C-style escapes, `$` and `%` doubled."""
    text = str(value)
    if not _QUOTE_SPECIAL.search(text):
        return f'"{text}"'
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "$":
            out.append("$$")
        elif ch == "%":
            out.append("%%")
        elif ch == "\n":
            out.append("\\n")
        elif _control(ch):
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def c_string(value: Any) -> str:
    """A C string literal: every byte outside printable ASCII as an octal escape (no trigraphs)."""
    out = ['"']
    for b in str(value).encode("utf-8"):
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "?":
            out.append("\\?")  # no trigraphs
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    out.append('"')
    return "".join(out)


def c_identifier(value: Any) -> str:
    """A C identifier derived from a name: [A-Za-z0-9_], never starting with a digit."""
    ident = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in str(value))
    return ident if ident and not ident[0].isdigit() else f"_{ident}"
