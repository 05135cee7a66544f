"""Semantics across documents: signatures ↔ data sources ↔ targets ↔ devices.

Runs only on documents that passed the structure stage and only on references that
resolved, so a broken document never produces a cascade of follow-up errors.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from compiler.diagnostics import Diagnostic
from compiler.loader.yamldoc import Path_
from compiler.render.plugins import target_classes
from compiler.spec.datasource import FieldBase
from compiler.spec.deployment import Binding, Deployment
from compiler.spec.device import Device
from compiler.spec.model import Feature, Model, Standardize, Tensor
from compiler.spec.target import TargetSpec
from compiler.spec.testsuite import DataTest, DriftTest, InvarianceTest, MetricTest, TestSuite
from compiler.validate.checks import Check, run_checks
from compiler.validate.document import SpecDocument, Valid, did_you_mean
from compiler.validate.index import SpecIndex

CPU = "CPUExecutionProvider"  # compiler.models.compat's, without importing onnx here

# --- dtypes ------------------------------------------------------------------------------------

_FLOAT_MANTISSA = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}
_FLOAT_MAX_EXPONENT = {"float16": 16, "bfloat16": 128, "float32": 128, "float64": 1024}
_INT_BITS = {"int8": 7, "int16": 15, "int32": 31, "int64": 63, "uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64}
# A narrower float is harmless when its step at the range's largest magnitude is below a millionth of
# the range: finer than any industrial sensor resolves (a 20-bit ADC), coarse enough to catch
# timestamps and totalizers squeezed into float32.
_RESOLUTION = 1e-6

_SHARED_RESOURCES = (
    "resources apply to every target of the Deployment: lower them to fit the smallest target, "
    "or split the Deployment into one per target class"
)


def dtype_conversion(src: str, dst: str) -> str:
    """'same', 'safe', 'lossy' or 'invalid' for feeding a `src` value into a `dst` tensor."""
    if src == dst:
        return "same"
    if "string" in (src, dst):
        return "invalid"
    if src == "bool":
        return "safe"
    if dst == "bool":
        return "invalid"
    if src in _FLOAT_MANTISSA:
        if dst in _FLOAT_MANTISSA:
            return "safe" if _FLOAT_MANTISSA[dst] >= _FLOAT_MANTISSA[src] else "lossy"
        return "lossy"
    if dst in _FLOAT_MANTISSA:
        return "safe" if _INT_BITS[src] <= _FLOAT_MANTISSA[dst] else "lossy"
    src_signed, dst_signed = not src.startswith("u"), not dst.startswith("u")
    if src_signed and not dst_signed:
        return "lossy"
    return "safe" if _INT_BITS[src] <= _INT_BITS[dst] else "lossy"


def float_narrowing_harmless(src: str, dst: str, value_range: tuple[float, float] | None) -> bool:
    """A float64 reading fed to float32 (or narrower) loses nothing that matters when the declared
    range shows the narrower type's step stays below a millionth of the range."""
    if src not in _FLOAT_MANTISSA or dst not in _FLOAT_MANTISSA or value_range is None:
        return False
    lo, hi = value_range
    largest = max(abs(lo), abs(hi))
    if hi <= lo or largest == 0:
        return False
    exponent = math.frexp(largest)[1]
    if exponent > _FLOAT_MAX_EXPONENT[dst]:
        return False  # overflows to infinity
    return 2.0 ** (exponent - _FLOAT_MANTISSA[dst]) <= (hi - lo) * _RESOLUTION


def conversion(src: str, dst: str, value_range: tuple[float, float] | None) -> str:
    """dtype_conversion, with float narrowing forgiven where the declared range shows it harmless."""
    conv = dtype_conversion(src, dst)
    return "safe" if conv == "lossy" and float_narrowing_harmless(src, dst, value_range) else conv


_UNIT_ALIASES = {
    "°c": "degC",
    "℃": "degC",
    "celsius": "degC",
    "degc": "degC",
    "°f": "degF",
    "degf": "degF",
    "percent": "%",
    "pct": "%",
    "mm/sec": "mm/s",
    "m/sec": "m/s",
    "rpm": "1/min",
}


def _unit(u: str) -> str:
    u = u.strip()
    return _UNIT_ALIASES.get(u.lower(), u)


def check_semantics(index: SpecIndex) -> list[Diagnostic]:
    return run_checks(CHECKS, index) + list(CLASS_RULES(index))


# --- Target ------------------------------------------------------------------------------------

_REQUIRED_TARGET = (("class", "class_"), ("arch", "arch"), ("os", "os"), ("memory", "memory"))


def _missing(spec: TargetSpec) -> list[str]:
    missing = [alias for alias, attr in _REQUIRED_TARGET if getattr(spec, attr) is None]
    if spec.runtime is None or spec.runtime.onnxruntime is None:
        missing.append("runtime.onnxruntime")
    return missing


def _complete_targets(index: SpecIndex) -> Iterator[tuple[SpecDocument, TargetSpec]]:
    """Valid Targets whose extends resolved and that have every required field (TAKT4013 otherwise)."""
    for doc in index.valid("Target"):
        spec = index.resolved_targets.get(doc.name or "")
        if spec is not None and not _missing(spec):
            yield doc, spec


def target_complete(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc in index.valid("Target"):
        spec = index.resolved_targets.get(doc.name or "")
        missing = _missing(spec) if spec is not None else []  # extends unresolved: the reference stage's
        if missing:
            via = " (after extends)" if doc.model.spec.extends else ""
            yield doc.diag("TAKT4013", f"Target needs {', '.join(missing)}{via}", ("spec",), key=True)


def target_class_known(index: SpecIndex) -> Iterator[Diagnostic]:
    """Checked here, not in the (cached) structure stage: installing a class package changes the answer."""
    known = target_classes()
    for doc in index.valid("Target"):
        own = doc.model.spec.class_
        if own is not None and own not in known:
            yield doc.diag(
                "TAKT4034",
                f"unknown target class {own!r}",
                ("spec", "class"),
                hint=f"{did_you_mean(own, known)} (installed: {', '.join(sorted(known))})".lstrip(),
            )


def profile_fits_class(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT4035: a Target's `profile` parses as its class's typed profile (the renderer reads that model)."""
    from compiler.render.profile import ProfileError

    known = target_classes()
    for doc, spec in _complete_targets(index):
        tc = known.get(spec.class_ or "")
        if tc is None:
            continue
        try:
            tc.profile(spec.profile)
        except ProfileError as exc:
            for path, message in exc.problems:
                where = ".".join(str(p) for p in path)
                yield doc.diag(
                    "TAKT4035",
                    f"profile.{where}: {message} (class {tc.name})",
                    ("spec", "profile", *path),
                    key=message.startswith("Extra inputs"),
                    hint=did_you_mean(str(path[0]), _profile_fields(tc.plugin.profile)) if len(path) == 1 else "",
                )


def _profile_fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def target_class_rules(index: SpecIndex) -> Iterator[Diagnostic]:
    """Each complete Target through its class's own `validate` hook (the class's codes)."""
    known = target_classes()
    for doc, spec in _complete_targets(index):
        tc = known.get(spec.class_ or "")
        if tc is not None:
            yield from tc.plugin.validate(doc, spec)


def cpu_fallback_needs_accelerator(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc, spec in _complete_targets(index):
        rt = spec.runtime
        if rt and rt.disable_cpu_fallback and not any(p != CPU for p in rt.execution_providers or []):
            yield doc.diag(
                "TAKT4032",
                "disableCpuFallback without an accelerator execution provider",
                ("spec", "runtime", "disableCpuFallback"),
            )


# --- Model -------------------------------------------------------------------------------------


def model_signature_consistent(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc in index.valid("Model"):
        yield from _model_signature(doc)


def _model_signature(doc: Valid[Model]) -> Iterator[Diagnostic]:
    model: Model = doc.model
    for side in ("inputs", "outputs"):
        tensors: list[Tensor] = getattr(model.spec, side)
        counts = Counter(t.name for t in tensors)
        for i, t in enumerate(tensors):
            if counts[t.name] > 1:
                yield doc.diag("TAKT4014", f"{side[:-1]} name {t.name!r} is used twice", ("spec", side, i, "name"))
            if t.features is not None and t.shape and isinstance(t.shape[-1], int) and len(t.features) != t.shape[-1]:
                yield doc.diag(
                    "TAKT4014",
                    f"{len(t.features)} features for a last dimension of {t.shape[-1]}",
                    ("spec", side, i, "features"),
                )
    inputs = {t.name: t for t in model.spec.inputs}
    for i, step in enumerate(model.spec.preprocessing):
        if step.input is not None and step.input not in inputs:
            yield doc.diag(
                "TAKT4014",
                f"preprocessing names unknown input {step.input!r}",
                ("spec", "preprocessing", i, "input"),
                hint=did_you_mean(step.input, inputs),
            )
            continue
        tensor = inputs.get(step.input) if step.input else model.spec.inputs[0]
        width = _width(tensor) if tensor else None
        for attr in ("mean", "std", "min", "max"):
            values = getattr(step, attr, None)
            if isinstance(values, list) and width is not None and len(values) not in (1, width):
                yield doc.diag(
                    "TAKT4014",
                    f"{attr} has {len(values)} values for {width} features",
                    ("spec", "preprocessing", i, attr),
                )
        if isinstance(step, Standardize) and any(s == 0 for s in step.std):
            yield doc.diag(
                "TAKT4014", "std contains 0: standardizing would divide by zero", ("spec", "preprocessing", i, "std")
            )


def _width(tensor: Tensor) -> int | None:
    if tensor.features is not None:
        return len(tensor.features)
    last = tensor.shape[-1] if tensor.shape else None
    return last if isinstance(last, int) else None


# --- TestSuite ---------------------------------------------------------------------------------


def _tests(index: SpecIndex) -> Iterator[tuple[SpecDocument, TestSuite, int, Any]]:
    for doc in index.valid("TestSuite"):
        suite: TestSuite = doc.model
        for i, test in enumerate(suite.spec.tests):
            yield doc, suite, i, test


def test_names_unique(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT3008: a suite's test names are unique (reports and gates name them)."""
    for doc in index.valid("TestSuite"):
        tests = doc.model.spec.tests
        names = Counter(t.name for t in tests)
        for i, test in enumerate(tests):
            if names[test.name] > 1:
                yield doc.diag("TAKT3008", f"test name {test.name!r} is used twice", ("spec", "tests", i, "name"))


def test_references_resolve(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT4016: datasets a test names are in spec.datasets, outputs in the model."""
    for doc, suite, i, test in _tests(index):
        base: Path_ = ("spec", "tests", i)
        refs: list[tuple[str, str]] = []
        if isinstance(test, MetricTest | DataTest | InvarianceTest):
            refs.append(("dataset", test.dataset))
        if isinstance(test, DriftTest):
            refs += [("reference", test.reference), ("candidate", test.candidate)]
        datasets = suite.spec.datasets
        for attr, name in refs:
            if name not in datasets:
                yield doc.diag(
                    "TAKT4016",
                    f"no dataset {name!r} in spec.datasets",
                    (*base, attr),
                    hint=did_you_mean(name, datasets),
                )
        model_doc = index.get("Model", suite.spec.model)
        model: Model | None = model_doc.model if model_doc else None
        if isinstance(test, MetricTest) and model is not None and test.output is not None:
            outputs = [t.name for t in model.spec.outputs]
            if test.output not in outputs:
                yield doc.diag(
                    "TAKT4016",
                    f"model {model.metadata.name!r} has no output {test.output!r}",
                    (*base, "output"),
                    hint=did_you_mean(test.output, outputs),
                )


def metric_threshold_in_range(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc, _suite, i, test in _tests(index):
        if (
            isinstance(test, MetricTest)
            and test.metric in ("accuracy", "precision", "recall", "f1")
            and not 0 <= test.threshold <= 1
        ):
            yield doc.diag(
                "TAKT1014", f"{test.metric} threshold must be within 0..1", ("spec", "tests", i, "threshold")
            )


# --- Deployment --------------------------------------------------------------------------------


def select_devices(index: SpecIndex, dep: Deployment) -> list[Valid[Device]]:
    """Devices running one of the deployment's targets and matching its selector."""
    targets = set(dep.spec.targets)
    return [d for d in index.devices(dep.spec.selector) if d.model.spec.target in targets]


def _deployments(index: SpecIndex) -> Iterator[tuple[Valid[Deployment], Deployment, Model | None]]:
    for doc in index.valid("Deployment"):
        dep: Deployment = doc.model
        model_doc = index.get("Model", dep.spec.model.name)
        yield doc, dep, model_doc.model if model_doc else None


def outputs_exist(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc, dep, model in _deployments(index):
        if model is None:
            continue
        outputs = [t.name for t in model.spec.outputs]
        for i, o in enumerate(dep.spec.outputs):
            if o.from_ not in outputs:
                yield doc.diag(
                    "TAKT4008",
                    f"model {model.metadata.name!r} has no output {o.from_!r}",
                    ("spec", "outputs", i, "from"),
                    hint=did_you_mean(o.from_, outputs),
                )


def output_connection_protocol(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc, dep, _model in _deployments(index):
        for i, o in enumerate(dep.spec.outputs):
            conn = getattr(o, "connection", None)
            conn_doc = index.get("DataSource", conn) if conn else None
            if conn_doc is not None and conn_doc.model is not None:
                protocol = conn_doc.model.spec.protocol
                if protocol != o.type:
                    yield doc.diag(
                        "TAKT4033",
                        f"{o.type} output uses DataSource {conn!r}, which speaks {protocol}",
                        ("spec", "outputs", i, "connection"),
                    )


def gates_test_the_model(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc, dep, _model in _deployments(index):
        spec = dep.spec
        for i, gate in enumerate(spec.gates):
            suite_doc = index.get("TestSuite", gate)
            if suite_doc is not None and suite_doc.model is not None:
                tested = suite_doc.model.spec.model
                if tested != spec.model.name:
                    yield doc.diag(
                        "TAKT4007",
                        f"gate {gate!r} tests model {tested!r}, not {spec.model.name!r}",
                        ("spec", "gates", i),
                    )


@dataclass(frozen=True)
class _Bound:
    """One binding whose input exists and is bound once, with its resolved DataSource's fields."""

    doc: SpecDocument
    index: int
    binding: Binding
    tensor: Tensor
    fields: Mapping[str, FieldBase]
    better: list[str] | None  # the order the fields fit the features in, when the given one does not

    @property
    def base(self) -> Path_:
        return ("spec", "bindings", self.index)

    def pairs(self) -> Iterator[tuple[int, str, FieldBase]]:
        """(position, name, field) of the bound fields that exist."""
        for j, name in enumerate(self.binding.fields):
            f = self.fields.get(name)
            if f is not None:
                yield j, name, f


def _binding_walk(index: SpecIndex) -> Iterator[tuple[Valid[Deployment], Model, int, Binding, str]]:
    """Every binding of a deployment whose model resolved: 'unknown' input, 'twice' bound, or 'ok'."""
    for doc, dep, model in _deployments(index):
        if model is None:
            continue
        inputs = {t.name for t in model.spec.inputs}
        bound: set[str] = set()
        for i, b in enumerate(dep.spec.bindings):
            if b.input not in inputs:
                yield doc, model, i, b, "unknown"
            elif b.input in bound:
                yield doc, model, i, b, "twice"
            else:
                bound.add(b.input)
                yield doc, model, i, b, "ok"


def _bound(index: SpecIndex) -> list[_Bound]:
    """The resolved bindings, walked once per index: seven checks read them (a fleet has thousands)."""
    key = ("bound", len(index.by_kind.get("Deployment", {})), len(index.by_kind.get("DataSource", {})))
    if key not in index.derived:
        index.derived[key] = list(_walk_bound(index))
    bound: list[_Bound] = index.derived[key]
    return bound


def _walk_bound(index: SpecIndex) -> Iterator[_Bound]:
    for doc, model, i, b, status in _binding_walk(index):
        src_doc = index.get("DataSource", b.source)
        if status != "ok" or src_doc is None or src_doc.model is None:
            continue
        tensor = next(t for t in model.spec.inputs if t.name == b.input)
        fields = {f.name: f for f in src_doc.model.spec.fields}
        yield _Bound(doc, i, b, tensor, fields, _better_order(b.fields, fields, tensor.features or []))


def binding_parts_resolve(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT3001 for a binding's input and fields: part of the reference stage's one TAKT3001 check."""
    for doc, model, i, b, status in _binding_walk(index):
        if status == "unknown":
            inputs = [t.name for t in model.spec.inputs]
            yield doc.diag(
                "TAKT3001",
                f"model {model.metadata.name!r} has no input {b.input!r}",
                ("spec", "bindings", i, "input"),
                hint=did_you_mean(b.input, inputs),
            )
    for bd in _bound(index):
        for j, name in enumerate(bd.binding.fields):
            if name not in bd.fields:
                yield bd.doc.diag(
                    "TAKT3001",
                    f"DataSource {bd.binding.source!r} has no field {name!r}",
                    (*bd.base, "fields", j),
                    hint=did_you_mean(name, bd.fields),
                )


def input_bound_once(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc, _model, i, b, status in _binding_walk(index):
        if status == "twice":
            dep: Deployment = doc.model
            first = next(n for n, other in enumerate(dep.spec.bindings) if other.input == b.input)
            yield doc.diag(
                "TAKT4006", f"input {b.input!r} is already bound by bindings[{first}]", ("spec", "bindings", i, "input")
            )


def every_input_bound(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc, dep, model in _deployments(index):
        if model is None:
            continue
        bound = {b.input for b in dep.spec.bindings}
        for t in model.spec.inputs:
            if t.name not in bound:
                yield doc.diag(
                    "TAKT4001",
                    f"model input {t.name!r} is not bound to any data source",
                    ("spec", "bindings"),
                    key=True,
                )


def binding_width(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT4002: as many fields as the input's last axis takes; a tensor layout, one field of its shape."""
    for bd in _bound(index):
        b, tensor = bd.binding, bd.tensor
        width = _width(tensor)
        if b.layout == "tensor":
            yield from _tensor_binding(bd)
        elif width is not None and len(b.fields) != width:
            yield bd.doc.diag(
                "TAKT4002",
                f"{len(b.fields)} fields bound to input {b.input!r}, which takes {width}",
                (*bd.base, "fields"),
                hint=f"shape {tensor.shape}"
                + (f", features {[f.name for f in tensor.features]}" if tensor.features else ""),
            )


def _tensor_binding(bd: _Bound) -> Iterator[Diagnostic]:
    """One field carries the whole input (minus the batch axis)."""
    b, tensor = bd.binding, bd.tensor
    if len(b.fields) != 1:
        yield bd.doc.diag(
            "TAKT4002", f"layout tensor binds exactly one field, not {len(b.fields)}", (*bd.base, "fields")
        )
        return
    f = bd.fields.get(b.fields[0])
    if f is None or f.shape is None:
        return
    expected = tensor.shape[1:] if len(tensor.shape) == len(f.shape) + 1 else tensor.shape
    if len(expected) != len(f.shape) or any(
        isinstance(e, int) and e != g for e, g in zip(expected, f.shape, strict=True)
    ):
        yield bd.doc.diag(
            "TAKT4002",
            f"field {f.name!r} has shape {f.shape}; input {b.input!r} takes {tensor.shape}",
            (*bd.base, "fields", 0),
        )


def _clash(bd: _Bound) -> tuple[str, Feature] | None:
    """The first field whose unit does not fit its feature in the given order (when reordering fits)."""
    features = bd.tensor.features or []
    pairs = zip(bd.binding.fields, features, strict=True)
    return next(((n, ft) for n, ft in pairs if not _unit_fits(bd.fields[n], ft)), None)


def _order_message(bd: _Bound) -> str:
    fields = ", ".join(bd.binding.fields)
    return f"fields [{fields}] are bound in another order than the features of input {bd.binding.input!r}"


def binding_order(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT4019: every unit fits either way, but the fields carry the features' names in another order."""
    for bd in _bound(index):
        if bd.better is not None and _clash(bd) is None:
            names = ", ".join(ft.name for ft in bd.tensor.features or [])
            yield bd.doc.diag(
                "TAKT4019",
                f"{_order_message(bd)}, [{names}]",
                (*bd.base, "fields"),
                hint=f"bind fields: [{', '.join(bd.better)}]",
            )


def binding_units(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT4005: a field's unit is its feature's; when a reordering makes every unit fit, one finding names it."""
    for bd in _bound(index):
        clash = _clash(bd) if bd.better is not None else None
        if clash is not None:
            name, feature = clash
            message = (
                f"{_order_message(bd)}: field {name!r} is in {bd.fields[name].unit} where feature {feature.name!r} "
                f"expects {feature.unit}, and reordered every unit fits"
            )
            yield bd.doc.diag(
                "TAKT4005", message, (*bd.base, "fields"), hint=f"bind fields: [{', '.join(bd.better or [])}]"
            )
        if bd.better is not None:
            continue
        features = bd.tensor.features or []
        for j, name, f in bd.pairs():
            feature = features[j] if j < len(features) else None
            if feature is not None and not _unit_fits(f, feature):
                yield bd.doc.diag(
                    "TAKT4005",
                    f"field {name!r} is in {f.unit}; feature {feature.name!r} expects {feature.unit}",
                    (*bd.base, "fields", j),
                    hint="convert at the source or add a scale, and retrain if in doubt",
                )


def binding_dtype_valid(index: SpecIndex) -> Iterator[Diagnostic]:
    for bd in _bound(index):
        for j, _name, f in bd.pairs():
            if conversion(f.dtype, bd.tensor.dtype, f.range) == "invalid":
                yield bd.doc.diag(
                    "TAKT4003",
                    f"field {f.name!r} is {f.dtype}; input {bd.binding.input!r} is {bd.tensor.dtype}",
                    (*bd.base, "fields", j),
                )


def binding_dtype_lossless(index: SpecIndex) -> Iterator[Diagnostic]:
    for bd in _bound(index):
        dst = bd.tensor.dtype
        for j, _name, f in bd.pairs():
            if conversion(f.dtype, dst, f.range) == "lossy":
                hint = "declare the field's range: if it shows the precision is kept, this goes away"
                yield bd.doc.diag(
                    "TAKT4004",
                    f"field {f.name!r} ({f.dtype}) loses precision as {dst}",
                    (*bd.base, "fields", j),
                    hint=hint if f.dtype in _FLOAT_MANTISSA and dst in _FLOAT_MANTISSA else "",
                )


def binding_bool_to_number(index: SpecIndex) -> Iterator[Diagnostic]:
    for bd in _bound(index):
        dst = bd.tensor.dtype
        for j, _name, f in bd.pairs():
            if f.dtype == "bool" and dst != "bool" and conversion(f.dtype, dst, f.range) == "safe":
                yield bd.doc.diag(
                    "TAKT4018",
                    f"field {f.name!r} is a bool; input {bd.binding.input!r} is {dst}, so it arrives as 0 or 1",
                    (*bd.base, "fields", j),
                    hint="bind it only if the model was trained on this flag as 0/1",
                )


def _unit_fits(f: FieldBase, feature: Feature) -> bool:
    return not (feature.unit and f.unit and _unit(feature.unit) != _unit(f.unit))


def _better_order(names: list[str], fields: Mapping[str, FieldBase], features: list[Feature]) -> list[str] | None:
    """The bound fields reordered to fit the features — by name when they carry the features' names,
    else by unit — when the order given does not fit and the reordered one does."""
    if not features or len(names) != len(features) or len(set(names)) != len(names):
        return None
    if any(n not in fields for n in names):
        return None
    wanted = [ft.name for ft in features]
    candidate = wanted if sorted(names) == sorted(wanted) else _order_by_unit(names, fields, features)
    if candidate is None or candidate == names:
        return None
    return candidate if all(_unit_fits(fields[n], ft) for n, ft in zip(candidate, features, strict=True)) else None


def _order_by_unit(names: list[str], fields: Mapping[str, FieldBase], features: list[Feature]) -> list[str] | None:
    """Only when the given order mismatches a unit: each feature takes the first free field of its unit."""
    if all(_unit_fits(fields[n], ft) for n, ft in zip(names, features, strict=True)):
        return None
    free = list(names)
    order: list[str] = []
    for position, ft in enumerate(features):
        keep = names[position] if names[position] in free and _unit_fits(fields[names[position]], ft) else None
        pick = keep or next((n for n in free if fields[n].unit and _unit_fits(fields[n], ft)), None)
        if pick is None:
            return None
        free.remove(pick)
        order.append(pick)
    return order


def selects_devices(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc, dep, _model in _deployments(index):
        spec = dep.spec
        if not select_devices(index, dep) and all(index.get("Target", t) for t in spec.targets):
            yield doc.diag(
                "TAKT4010",
                "no Device runs one of the targets and matches the selector",
                ("spec", "selector") if spec.selector else ("spec", "targets"),
                key=True,
            )


def selected_devices_run_listed_targets(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc, dep, _model in _deployments(index):
        spec = dep.spec
        if spec.selector is None:
            continue
        elsewhere = [d for d in index.devices(spec.selector) if d.model.spec.target not in spec.targets]
        if elsewhere:
            names = ", ".join(repr(d.name) for d in elsewhere[:5]) + (" …" if len(elsewhere) > 5 else "")
            yield doc.diag(
                "TAKT4011",
                f"{len(elsewhere)} device(s) match the selector but run another target: {names}",
                ("spec", "targets"),
                key=True,
                related=[d.locate(("spec", "target")) for d in elsewhere[:5]],
            )


def canary_selects_devices(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc, dep, _model in _deployments(index):
        canary = dep.spec.rollout.canary
        if canary is None or canary.selector is None:
            continue
        selected = select_devices(index, dep)
        if selected and not any(canary.selector.matches(d.labels) for d in selected):
            yield doc.diag(
                "TAKT4017",
                "the canary selector matches none of the deployment's devices",
                ("spec", "rollout", "canary", "selector"),
                key=True,
            )


def resources_fit_targets(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc, dep, _model in _deployments(index):
        spec = dep.spec
        res = spec.resources
        hint = _SHARED_RESOURCES if len(spec.targets) > 1 else ""
        for i, name in enumerate(spec.targets):
            target = index.resolved_targets.get(name)
            if target is None or res is None:
                continue
            if res.memory is not None and target.memory is not None and res.memory > target.memory:
                yield doc.diag(
                    "TAKT4012",
                    f"requests {res.memory:,} bytes of memory; target {name!r} has {target.memory:,}",
                    ("spec", "resources", "memory"),
                    related=[doc.locate(("spec", "targets", i))],
                    hint=hint,
                )
            if res.gpu and not any(a.type == "gpu" for a in target.accelerators or []):
                yield doc.diag(
                    "TAKT4012", f"requests a GPU; target {name!r} has none", ("spec", "resources", "gpu"), hint=hint
                )


# --- the stage's registry: one check per code (the class rules yield the class's own codes) -----

CHECKS: tuple[Check[SpecIndex, Diagnostic], ...] = (
    Check("TAKT4013", target_complete),
    Check("TAKT4034", target_class_known),
    Check("TAKT4035", profile_fits_class),
    Check("TAKT4032", cpu_fallback_needs_accelerator),
    Check("TAKT4014", model_signature_consistent),
    Check("TAKT3008", test_names_unique),
    Check("TAKT4016", test_references_resolve),
    Check("TAKT1014", metric_threshold_in_range),
    Check("TAKT4008", outputs_exist),
    Check("TAKT4033", output_connection_protocol),
    Check("TAKT4007", gates_test_the_model),
    Check("TAKT4006", input_bound_once),
    Check("TAKT4001", every_input_bound),
    Check("TAKT4002", binding_width),
    Check("TAKT4019", binding_order),
    Check("TAKT4005", binding_units),
    Check("TAKT4003", binding_dtype_valid),
    Check("TAKT4004", binding_dtype_lossless),
    Check("TAKT4018", binding_bool_to_number),
    Check("TAKT4010", selects_devices),
    Check("TAKT4011", selected_devices_run_listed_targets),
    Check("TAKT4017", canary_selects_devices),
    Check("TAKT4012", resources_fit_targets),
)
CLASS_RULES = target_class_rules  # yields each target class's own codes (TAKT4015, TAKT4030, TAKT4031, …)
