"""The spec reference (docs/spec-reference.md), generated from the same pydantic models as the JSON Schema.

No hand-kept copy: `takt schema --markdown docs/spec-reference.md` writes it and a test compares the
committed file with what the models give, as for schemas/.
"""

from __future__ import annotations

import json
from typing import Any

from compiler.project import Project
from compiler.spec import types
from compiler.spec.docs import documented
from compiler.spec.kinds import KINDS

_PATTERNS = {  # what a pattern of the value types means, in words
    types.NAME_PATTERN: "name (a DNS label)",
    types.IDENT_PATTERN: "identifier",
    types.VERSION_PATTERN: "version",
    types.BYTES_PATTERN: "bytes (`512Mi`, `2G`)",
    types.CPU_PATTERN: "cores (`500m`, `2`)",
    types.DURATION_PATTERN: "duration (`100ms`, `30m`)",
    types.SHA256_PATTERN: "sha256 (64 hex digits)",
    types.SECRET_REF_PATTERN: "secret reference (`vault:…`, `env:…`, …)",
}

_HEADER = """\
# Spec reference

Generated from the spec models by `takt schema --markdown docs/spec-reference.md` (`make schemas`); a test
fails when this file and the models differ, so edit the models' docstrings, not this file. The same models
give the editor schemas in [`schemas/`](../schemas). Keys are camelCase; a field without a default is
required. Every document has `apiVersion: takt/v1`, `kind`, `metadata` and `spec`.
"""


def reference_markdown() -> str:
    documented()
    parts = [_HEADER, "Kinds: " + ", ".join(f"[{k}](#{k.lower()})" for k in {**KINDS, "Project": Project}) + "\n"]
    schemas = {kind: cls.model_json_schema(by_alias=True, mode="validation") for kind, cls in KINDS.items()}
    metadata = next(iter(schemas.values()))["$defs"]["Metadata"]
    parts.append("## metadata\n\nThe same in every kind.\n\n" + _Kind("metadata", {"$defs": {}}).table(metadata))
    schemas["Project"] = Project.model_json_schema(by_alias=True, mode="validation")
    for kind, schema in schemas.items():
        parts.append(_Kind(kind, schema).render())
    return "\n".join(parts)


class _Kind:
    """One kind: its `spec` table, then one table per nested object, each once, in order of first use."""

    def __init__(self, kind: str, schema: dict[str, Any]) -> None:
        self.kind, self.defs = kind, schema.get("$defs", {})
        self.root = schema
        self.queue: list[str] = []

    def anchor(self, name: str) -> str:
        return f"{self.kind}-{name}".lower()

    def render(self) -> str:
        doc = self.root.get("description", "").strip()
        out = [f"## {self.kind}\n"]
        if doc:
            out.append(doc + "\n")
        spec = self.root["properties"].get("spec")
        if spec is None:
            out.append(self.table(self.root))
        elif self._ref(spec):
            name = self._ref(spec) or ""
            out.append(f"`spec` ({name}):\n")
            out.append(self.table(self.defs[name]))
        else:
            by = spec.get("discriminator", {}).get("propertyName")
            out.append(f"`spec` is one of {self.type_of(spec)}" + (f", chosen by `{by}`" if by else "") + ".\n")
        done = {self._ref(spec) or ""} if spec else set()
        while self.queue:
            name = self.queue.pop(0)
            if name in done or name == "Metadata":
                continue
            done.add(name)
            sub = self.defs[name]
            out.append(f'<a id="{self.anchor(name)}"></a>\n#### {self.kind} · {name}\n')
            if sub.get("description"):
                out.append(sub["description"].strip() + "\n")
            out.append(self.table(sub) if "properties" in sub else f"{self.type_of(sub)}\n")
        return "\n".join(out)

    def table(self, obj: dict[str, Any]) -> str:
        required = set(obj.get("required", []))
        rows = ["| field | type | default | description |", "|---|---|---|---|"]
        for key, prop in obj.get("properties", {}).items():
            if key in ("apiVersion", "kind"):
                continue
            default = "required" if key in required else _default(prop)
            desc = " ".join(prop.get("description", "").split()).replace("|", "\\|")
            rows.append(f"| `{key}` | {self.type_of(prop)} | {default} | {desc} |")
        return "\n".join(rows) + "\n"

    def _ref(self, prop: dict[str, Any]) -> str | None:
        ref = prop.get("$ref")
        return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None

    def type_of(self, prop: dict[str, Any]) -> str:
        name = self._ref(prop)
        if name:
            self.queue.append(name)
            return f"[{name}](#{self.anchor(name)})"
        if "const" in prop:
            return f"`{json.dumps(prop['const'])}`"
        if "enum" in prop:
            return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
        for combo in ("oneOf", "anyOf"):
            if combo in prop:
                kinds = [self.type_of(p) for p in prop[combo] if p.get("type") != "null"]
                return " or ".join(dict.fromkeys(kinds))
        t = prop.get("type")
        if t == "array":
            items = prop.get("items")
            if isinstance(items, dict):
                return f"list of {self.type_of(items)}"
            return "list"
        if t == "object":
            extra = prop.get("additionalProperties")
            if isinstance(extra, dict):
                return f"map of {self.type_of(extra)}"
            for value in prop.get("patternProperties", {}).values():
                return f"map of name → {self.type_of(value)}"
            return "mapping"
        bounds = [f"{op} {prop[k]}" for k, op in (("minimum", "≥"), ("maximum", "≤")) if k in prop]
        text = {"string": "string", "integer": "integer", "number": "number", "boolean": "bool"}.get(str(t), "any")
        if prop.get("pattern") and t == "string":
            text = _PATTERNS.get(prop["pattern"], text)
        return text + (f" ({', '.join(bounds)})" if bounds else "")


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop or prop["default"] is None:
        return ""
    value = prop["default"]
    if value == [] or value == {}:
        return "empty"
    text = json.dumps(value, ensure_ascii=False)
    return f"`{text}`" if len(text) <= 40 else "see model"
