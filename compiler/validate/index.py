"""The spec graph: documents by kind and name, with resolution helpers and resolved Targets."""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal, cast, overload

from compiler.spec.datasource import DataSource
from compiler.spec.deployment import Deployment
from compiler.spec.device import Device
from compiler.spec.model import Model
from compiler.spec.policy import Policy
from compiler.spec.target import Target, TargetSpec
from compiler.spec.testsuite import TestSuite
from compiler.spec.types import LabelSelector, SpecModel
from compiler.validate.document import Named, SpecDocument, Valid


@dataclass
class SpecIndex:
    documents: list[SpecDocument]
    by_kind: dict[str, dict[str, SpecDocument]] = field(default_factory=lambda: defaultdict(dict))
    resolved_targets: dict[str, TargetSpec] = field(default_factory=dict)
    unparsed: dict[str, str] = field(default_factory=dict)  # display path → text of files that did not parse

    @overload
    def get(self, kind: Literal["DataSource"], name: str) -> Named[DataSource] | None: ...
    @overload
    def get(self, kind: Literal["Model"], name: str) -> Named[Model] | None: ...
    @overload
    def get(self, kind: Literal["TestSuite"], name: str) -> Named[TestSuite] | None: ...
    @overload
    def get(self, kind: Literal["Target"], name: str) -> Named[Target] | None: ...
    @overload
    def get(self, kind: Literal["Device"], name: str) -> Named[Device] | None: ...
    @overload
    def get(self, kind: Literal["Deployment"], name: str) -> Named[Deployment] | None: ...
    @overload
    def get(self, kind: Literal["Policy"], name: str) -> Named[Policy] | None: ...
    @overload
    def get(self, kind: str, name: str) -> Named[SpecModel] | None: ...
    def get(self, kind: str, name: str) -> Named[SpecModel] | None:
        """The document of a kind by name; its model is that kind's class (or None: refused)."""
        # by_kind holds only named documents, filed under the kind whose class parsed them
        return cast("Named[SpecModel] | None", self.by_kind.get(kind, {}).get(name))

    def maybe_unparsed(self, name: str) -> bool:
        """A name that appears in a file that did not parse: its syntax error is the one finding."""
        word = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
        return any(word.search(text) for text in self.unparsed.values())

    _valid: dict[str, tuple[int, list[Valid[SpecModel]]]] = field(default_factory=dict, repr=False, compare=False)
    # views that several checks walk (the resolved bindings of every deployment), computed once per index
    # state: the key names what the view depends on, so adding documents recomputes it
    derived: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False, compare=False)

    @overload
    def valid(self, kind: Literal["DataSource"]) -> list[Valid[DataSource]]: ...
    @overload
    def valid(self, kind: Literal["Model"]) -> list[Valid[Model]]: ...
    @overload
    def valid(self, kind: Literal["TestSuite"]) -> list[Valid[TestSuite]]: ...
    @overload
    def valid(self, kind: Literal["Target"]) -> list[Valid[Target]]: ...
    @overload
    def valid(self, kind: Literal["Device"]) -> list[Valid[Device]]: ...
    @overload
    def valid(self, kind: Literal["Deployment"]) -> list[Valid[Deployment]]: ...
    @overload
    def valid(self, kind: Literal["Policy"]) -> list[Valid[Policy]]: ...
    @overload
    def valid(self, kind: str) -> list[Valid[SpecModel]]: ...
    def valid(self, kind: str) -> list[Valid[Any]]:
        """Documents of a kind that passed the structure stage (a new list; computed once per kind,
        again only if documents of that kind were added: selectors call this for every deployment)."""
        docs = self.by_kind.get(kind, {})
        known = self._valid.get(kind)
        if known is None or known[0] != len(docs):
            # named (by_kind holds no other), and a model of the kind's class: the structure stage's
            accepted = cast("list[Valid[SpecModel]]", [d for d in docs.values() if d.model is not None])
            known = (len(docs), accepted)
            self._valid[kind] = known
        return list(known[1])

    @functools.cached_property
    def _devices_by_label(self) -> dict[tuple[str, str], list[Valid[Device]]]:
        by_label: dict[tuple[str, str], list[Valid[Device]]] = defaultdict(list)
        for doc in self.valid("Device"):
            for item in doc.model.metadata.labels.items():
                by_label[item].append(doc)
        return by_label

    def devices(self, selector: LabelSelector | None) -> list[Valid[Device]]:
        """Valid Devices matching a selector, in document order; an inverted label index keeps a
        fleet of thousands of devices and deployments linear."""
        devices = self.valid("Device")
        if selector is None:
            return devices
        if selector.match_labels:
            groups = [self._devices_by_label.get(item, []) for item in selector.match_labels.items()]
            smallest = min(groups, key=len)
            others = [{id(d) for d in g} for g in groups if g is not smallest]
            devices = [d for d in smallest if all(id(d) in o for o in others)]
        if selector.match_expressions:
            devices = [d for d in devices if selector.matches(d.model.metadata.labels)]
        return devices


def build_index(documents: list[SpecDocument]) -> SpecIndex:
    """Documents by kind and name; the first of a duplicate name is indexed (references.py reports the rest)."""
    index = SpecIndex(documents)
    for doc in documents:
        if doc.name is not None:
            index.by_kind[doc.kind].setdefault(doc.name, doc)
    return index


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Child values win; mappings merge key by key; lists are replaced whole."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_targets(index: SpecIndex) -> None:
    """Follow `extends` chains and store merged specs; a chain with a missing or invalid parent, or a
    cycle, is skipped (references.py reports dangling parents and cycles)."""
    for doc in index.valid("Target"):
        chain: list[Valid[Target]] = [doc]
        broken = False
        while True:
            spec: TargetSpec = chain[-1].model.spec
            if spec.extends is None:
                break
            parent = index.get("Target", spec.extends)
            if parent is None or parent in chain or parent.model is None:
                broken = True
                break
            chain.append(cast("Valid[Target]", parent))  # its model is not None: checked just above
        if broken:
            continue
        merged: dict[str, Any] = {}
        for link in reversed(chain):
            merged = _deep_merge(merged, link.model.spec.model_dump(by_alias=True, exclude_none=True))
        merged.pop("extends", None)
        index.resolved_targets[doc.name] = TargetSpec.model_validate(merged)
