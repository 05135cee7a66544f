"""`takt diff` output: text for a terminal, Markdown for a bot's pull-request comment (the JSON is
DiffResult.as_json)."""

from __future__ import annotations

from compiler.diff import BundleChange, DiffResult


def grouped(d: DiffResult) -> list[tuple[list[str], list[BundleChange]]]:
    """Devices that receive exactly the same change, together: a fleet shares bundles, a review should too."""
    groups: dict[tuple, tuple[list[str], list[BundleChange]]] = {}
    for dev, changes in d.devices.items():
        key = tuple((c.name, c.change, c.before, c.after) for c in changes)
        groups.setdefault(key, ([], changes))[0].append(dev)
    return list(groups.values())


def _devices_label(devices: list[str], quote: str = "") -> str:
    names = ", ".join(f"{quote}{x}{quote}" for x in devices)
    return f"device {names}" if len(devices) == 1 else f"{len(devices)} devices {names}"


def render_markdown(d: DiffResult) -> str:
    lines = [f"### takt diff `{d.base[:12]}` → `{d.head[:12]}`", ""]
    if not d.devices:
        lines.append("No device receives a different bundle.")
    for devices, changes in grouped(d):
        lines.append(f"#### {_devices_label(devices, '`')}")
        for c in changes:
            lines.append(f"- **{c.change}** `{c.name}` " + (f"`{(c.before or '')[:12]}` → `{(c.after or '')[:12]}`"))
            for f in c.files:
                if f.diff:
                    lines += ["", "```diff", f.diff.replace("```", "`\u200b``"), "```", ""]
                else:
                    lines.append(f"  - {f.change} `{f.path}` ({f.digests[0][:12] or '∅'} → {f.digests[1][:12] or '∅'})")
        lines.append("")
    return "\n".join(lines) + "\n"


def render_text(d: DiffResult) -> str:
    out = [f"takt diff {d.base[:12]} → {d.head[:12]}"]
    if not d.devices:
        out.append("no device receives a different bundle")
    for devices, changes in grouped(d):
        out.append(_devices_label(devices))
        for c in changes:
            out.append(f"  {c.change:<8} {c.name}  {(c.before or '—')[:12]} → {(c.after or '—')[:12]}")
            for f in c.files:
                out.append(f"    {f.change:<8} {f.path}")
                if f.diff:
                    out += ["      " + ln for ln in f.diff.splitlines()]
    return "\n".join(out) + "\n"
