"""JSON Schema of every kind, exported from the pydantic models (the models are the truth)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from compiler.bundle import runner as runner_contract
from compiler.project import Project
from compiler.spec.docs import documented
from compiler.spec.kinds import KINDS

BASE_ID = "https://takt.dev/schemas/v1/"


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_files() -> dict[str, str]:
    """File name → content: one schema per kind, the project file, `takt.json` for any kind, and `runner.json`."""
    documented()
    files: dict[str, str] = {}
    branches = []
    kinds: dict[str, type[BaseModel]] = {**KINDS, "Project": Project}
    for kind, cls in kinds.items():
        schema = cls.model_json_schema(by_alias=True, mode="validation")
        name = f"{kind.lower()}.json"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = BASE_ID + name
        schema["title"] = kind
        files[name] = _dump(schema)
        if kind != "Project":
            branches.append(
                {"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]}, "then": {"$ref": name}}
            )
    files["takt.json"] = _dump(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": BASE_ID + "takt.json",
            "title": "takt/v1 spec document (any kind)",
            "type": "object",
            "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {"apiVersion": {"const": "takt/v1"}, "kind": {"enum": list(KINDS)}},
            "allOf": branches,
        }
    )
    files["runner.json"] = _dump(runner_contract.json_schema())  # the device contract, generated from its dataclasses
    return files
