"""systemd_text and systemd_quote write text without specials as it is (no per-character loop): the
same strings as the per-character escapers, for every character class either one rewrites."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.render.escape import systemd_quote, systemd_text


def _control(ch: str) -> bool:
    return ord(ch) < 0x20 or ord(ch) == 0x7F


def _text_reference(text: str) -> str:
    out = []
    for ch in text:
        out.append("%%" if ch == "%" else "\\\\" if ch == "\\" else " " if _control(ch) else ch)
    return "".join(out).strip()


def _quote_reference(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "$%":
            out.append(ch * 2)
        elif ch == "\n":
            out.append("\\n")
        elif _control(ch):
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


_texts = st.text() | st.text(alphabet=st.sampled_from('ab %$"\\\n\t\x00\x1f\x7f\x80\u2028 é'), max_size=12)


@settings(max_examples=500, deadline=None)
@given(_texts)
def test_fast_and_per_character_paths_agree(text: str) -> None:
    assert systemd_text(text) == _text_reference(text)
    assert systemd_quote(text) == _quote_reference(text)


def test_every_character_up_to_the_astral_planes() -> None:
    for code in range(0x3000):
        ch = chr(code)
        assert systemd_text(f" a{ch}b ") == _text_reference(f" a{ch}b ")
        assert systemd_quote(f"a{ch}b") == _quote_reference(f"a{ch}b")
