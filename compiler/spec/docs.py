"""Field descriptions from the spec models' attribute docstrings, read only where they are shown.

A docstring under a field is its description in `takt schema`'s JSON Schemas and in the Markdown
reference. pydantic's `use_attribute_docstrings` would read them while building every model class,
which re-reads and parses each model's source on every import (validate, test, build: 0.03-0.1 s
of CPU); nothing on those paths reads a description. So the models are built without them, and
`documented()` puts them in and rebuilds the models, once per process, before a schema is made.

The result is pydantic's own: a field's description is the one given in `Field(description=...)`,
else the docstring under it in the class that annotates it (a subclass inherits it with the field).
"""

from __future__ import annotations

import functools

from pydantic import BaseModel
from pydantic._internal._docs_extraction import extract_docstrings_from_cls
from pydantic._internal._mock_val_ser import set_model_mocks

from compiler.spec.types import SpecModel


def _subclasses(cls: type[SpecModel]) -> list[type[SpecModel]]:
    out: list[type[SpecModel]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return list(dict.fromkeys(out))


def _docstring(cls: type[SpecModel], name: str) -> str | None:
    """The docstring under `name` in the first class of `cls`'s MRO that annotates the field."""
    for klass in cls.__mro__:
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)):
            continue
        if name in vars(klass).get("__annotations__", {}):
            return _own_docstrings(klass).get(name)
    return None


@functools.cache
def _own_docstrings(cls: type[BaseModel]) -> dict[str, str]:
    return extract_docstrings_from_cls(cls, use_inspect=True)


@functools.cache
def documented() -> None:
    """Give every spec model's fields their docstrings as descriptions and rebuild the models (idempotent).

    Every model is marked incomplete before any is rebuilt, so a model's schema never reuses a nested
    model's schema of before (it would have no descriptions)."""
    # every model class is defined once these are imported
    import compiler.project
    import compiler.spec.kinds  # noqa: F401

    models = _subclasses(SpecModel)
    for cls in models:
        for name, info in cls.__pydantic_fields__.items():
            if info.description is None:
                info.description = _docstring(cls, name)
    for cls in models:
        cls.__pydantic_complete__ = False
        set_model_mocks(cls)
    for cls in models:
        cls.model_rebuild(force=True)
