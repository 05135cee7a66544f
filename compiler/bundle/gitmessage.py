"""What a failed Git command said, in one line: for the agent's fetch errors and publish's alike.

Git ends many errors with advice ("Please make sure you have the correct access rights / and the
repository exists."), so its last line is the least useful one; the cause is on the `fatal:`,
`error:`, `!` (a rejected ref) and `remote:` lines, sometimes continued on the next line.
"""

from __future__ import annotations

import re

MAX_CHARS = 300
_PROGRESS = ("Enumerating", "Counting", "Compressing", "Total", "Resolving", "Receiving", "Writing")
_ADVICE = ("hint:", "warning:", "To ")  # Git's advice and the push target: never part of a cause


def redact_url(text: str) -> str:
    """Every URL password in `text` replaced: messages end up in CI logs, journals and pushed status reports."""
    return re.sub(r"(://[^/\s:@]+:)[^/\s@]+@", r"\1***@", text)


def summary(stderr: str, limit: int = MAX_CHARS) -> str:
    """The cause lines of Git's stderr (GitPython's `stderr: '…'` wrapping off), joined by '; ', passwords redacted."""
    text = stderr.strip()
    if text.startswith("stderr:"):
        text = text[len("stderr:") :].strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    found: list[str] = []
    continued = False
    last = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continued = False
            continue
        last = line
        if line.startswith(("fatal:", "error:")):
            found.append(line.split(":", 1)[1].strip().rstrip("."))
            continued = True
        elif line.startswith("!"):
            found.append(line)
            continued = False
        elif line.startswith("remote:"):
            said = line[len("remote:") :].strip()
            if said and "%" not in said and not said.startswith(_PROGRESS):
                found.append(f"remote: {said}")
            continued = False
        elif continued and not line.startswith(_ADVICE):
            found[-1] = f"{found[-1]} {line}"
        else:
            continued = False
    picked = list(dict.fromkeys(found)) or ([last] if last else ["git failed"])
    joined = redact_url("; ".join(picked))
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"
