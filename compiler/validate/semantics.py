"""Semantics across documents: signatures ↔ data sources ↔ targets ↔ devices.

Runs only on documents that passed the structure stage and only on references that
resolved, so a broken document never produces a cascade of follow-up errors.
"""

from __future__ import annotations

import math
from collections import Counter

from compiler.diagnostics import Diagnostic, Severity
from compiler.loader.yamldoc import Path_
from compiler.spec.datasource import DataSource, FieldBase
from compiler.spec.deployment import Binding, Deployment
from compiler.spec.model import Feature, Model, Tensor
from compiler.spec.target import TargetSpec
from compiler.spec.testsuite import DataTest, DriftTest, InvarianceTest, MetricTest, TestSuite
from compiler.validate.document import SpecDocument, did_you_mean
from compiler.validate.index import SpecIndex

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
    out: list[Diagnostic] = []
    for doc in index.valid("Target"):
        _target(doc, index.resolved_targets.get(doc.name or ""), out)
    for doc in index.valid("Model"):
        _model(doc, out)
    for doc in index.valid("TestSuite"):
        _suite(doc, index, out)
    for doc in index.valid("Deployment"):
        _deployment(doc, index, out)
    return out


# --- Target ------------------------------------------------------------------------------------

_REQUIRED_TARGET = (("class", "class_"), ("arch", "arch"), ("os", "os"), ("memory", "memory"))


def _target(doc: SpecDocument, spec: TargetSpec | None, out: list[Diagnostic]) -> None:
    if spec is None:
        return  # extends did not resolve: reported by the reference stage
    missing = [alias for alias, attr in _REQUIRED_TARGET if getattr(spec, attr) is None]
    if spec.runtime is None or spec.runtime.onnxruntime is None:
        missing.append("runtime.onnxruntime")
    if missing:
        via = " (after extends)" if doc.model.spec.extends else ""  # type: ignore[union-attr]
        out.append(doc.diag("TAKT4013", f"Target needs {', '.join(missing)}{via}", ("spec",), key=True))
        return
    rt = spec.runtime
    if spec.class_ == "embedded":
        if spec.flash is None:
            out.append(doc.diag("TAKT4015", "embedded targets declare their flash size", ("spec",), key=True))
        if spec.os not in ("none", "zephyr", "freertos"):
            out.append(
                doc.diag(
                    "TAKT4015", f"embedded targets run bare metal, zephyr or freertos, not {spec.os}", ("spec", "os")
                )
            )
        if not (rt and (rt.minimal_build or rt.allowed_operators)):
            out.append(
                doc.diag(
                    "TAKT4015",
                    "embedded targets use a minimal onnxruntime build",
                    ("spec", "runtime"),
                    hint="set runtime.minimalBuild: true (operators are then taken from the models)",
                )
            )
    else:
        if spec.os not in ("linux", "windows"):
            out.append(
                doc.diag("TAKT4015", f"{spec.class_} targets run linux or windows, not {spec.os}", ("spec", "os"))
            )
        if spec.arch not in ("x86_64", "aarch64", "armv7", "riscv64"):
            out.append(
                doc.diag(
                    "TAKT4015",
                    f"{spec.class_} targets need an application processor, not {spec.arch}",
                    ("spec", "arch"),
                )
            )
    if rt and rt.disable_cpu_fallback and not any(p != "CPUExecutionProvider" for p in rt.execution_providers or []):
        out.append(
            doc.diag(
                "TAKT4015",
                "disableCpuFallback without an accelerator execution provider",
                ("spec", "runtime", "disableCpuFallback"),
                severity=Severity.WARNING,
            )
        )


# --- Model -------------------------------------------------------------------------------------


def _model(doc: SpecDocument, out: list[Diagnostic]) -> None:
    model: Model = doc.model  # type: ignore[assignment]
    for side in ("inputs", "outputs"):
        tensors: list[Tensor] = getattr(model.spec, side)
        counts = Counter(t.name for t in tensors)
        for i, t in enumerate(tensors):
            if counts[t.name] > 1:
                out.append(
                    doc.diag("TAKT4014", f"{side[:-1]} name {t.name!r} is used twice", ("spec", side, i, "name"))
                )
            if t.features is not None and t.shape and isinstance(t.shape[-1], int) and len(t.features) != t.shape[-1]:
                out.append(
                    doc.diag(
                        "TAKT4014",
                        f"{len(t.features)} features for a last dimension of {t.shape[-1]}",
                        ("spec", side, i, "features"),
                    )
                )
    inputs = {t.name: t for t in model.spec.inputs}
    for i, step in enumerate(model.spec.preprocessing):
        if step.input is not None and step.input not in inputs:
            out.append(
                doc.diag(
                    "TAKT4014",
                    f"preprocessing names unknown input {step.input!r}",
                    ("spec", "preprocessing", i, "input"),
                    hint=did_you_mean(step.input, inputs),
                )
            )
            continue
        tensor = inputs.get(step.input) if step.input else model.spec.inputs[0]
        width = _width(tensor) if tensor else None
        for attr, alias in (("mean", "mean"), ("std", "std"), ("min", "min"), ("max", "max")):
            values = getattr(step, attr, None)
            if isinstance(values, list) and width is not None and len(values) not in (1, width):
                out.append(
                    doc.diag(
                        "TAKT4014",
                        f"{alias} has {len(values)} values for {width} features",
                        ("spec", "preprocessing", i, alias),
                    )
                )
        if getattr(step, "std", None) and any(s == 0 for s in step.std):  # type: ignore[union-attr]
            out.append(
                doc.diag(
                    "TAKT4014",
                    "std contains 0: standardizing would divide by zero",
                    ("spec", "preprocessing", i, "std"),
                )
            )


def _width(tensor: Tensor) -> int | None:
    if tensor.features is not None:
        return len(tensor.features)
    last = tensor.shape[-1] if tensor.shape else None
    return last if isinstance(last, int) else None


# --- TestSuite ---------------------------------------------------------------------------------


def _suite(doc: SpecDocument, index: SpecIndex, out: list[Diagnostic]) -> None:
    suite: TestSuite = doc.model  # type: ignore[assignment]
    datasets = suite.spec.datasets
    names = Counter(t.name for t in suite.spec.tests)
    model_doc = index.get("Model", suite.spec.model)
    model: Model | None = model_doc.model if model_doc else None  # type: ignore[assignment]
    for i, test in enumerate(suite.spec.tests):
        base: Path_ = ("spec", "tests", i)
        if names[test.name] > 1:
            out.append(doc.diag("TAKT3002", f"test name {test.name!r} is used twice", (*base, "name")))
        refs: list[tuple[str, str]] = []
        if isinstance(test, MetricTest | DataTest | InvarianceTest):
            refs.append(("dataset", test.dataset))
        if isinstance(test, DriftTest):
            refs += [("reference", test.reference), ("candidate", test.candidate)]
        for attr, name in refs:
            if name not in datasets:
                out.append(
                    doc.diag(
                        "TAKT4016",
                        f"no dataset {name!r} in spec.datasets",
                        (*base, attr),
                        hint=did_you_mean(name, datasets),
                    )
                )
        if isinstance(test, MetricTest) and model is not None and test.output is not None:
            outputs = [t.name for t in model.spec.outputs]
            if test.output not in outputs:
                out.append(
                    doc.diag(
                        "TAKT4016",
                        f"model {model.metadata.name!r} has no output {test.output!r}",
                        (*base, "output"),
                        hint=did_you_mean(test.output, outputs),
                    )
                )
        if (
            isinstance(test, MetricTest)
            and test.metric in ("accuracy", "precision", "recall", "f1")
            and not 0 <= test.threshold <= 1
        ):
            out.append(doc.diag("TAKT1007", f"{test.metric} threshold must be within 0..1", (*base, "threshold")))


# --- Deployment --------------------------------------------------------------------------------


def select_devices(index: SpecIndex, dep: Deployment) -> list[SpecDocument]:
    """Devices running one of the deployment's targets and matching its selector."""
    targets = set(dep.spec.targets)
    return [d for d in index.devices(dep.spec.selector) if d.model.spec.target in targets]  # type: ignore[union-attr]


def _deployment(doc: SpecDocument, index: SpecIndex, out: list[Diagnostic]) -> None:
    dep: Deployment = doc.model  # type: ignore[assignment]
    spec = dep.spec
    model_doc = index.get("Model", spec.model.name)
    model: Model | None = model_doc.model if model_doc else None  # type: ignore[assignment]
    if model is not None:
        _bindings(doc, dep, model, index, out)
        outputs = [t.name for t in model.spec.outputs]
        for i, o in enumerate(spec.outputs):
            if o.from_ not in outputs:
                out.append(
                    doc.diag(
                        "TAKT4008",
                        f"model {model.metadata.name!r} has no output {o.from_!r}",
                        ("spec", "outputs", i, "from"),
                        hint=did_you_mean(o.from_, outputs),
                    )
                )
    for i, o in enumerate(spec.outputs):
        conn = getattr(o, "connection", None)
        conn_doc = index.get("DataSource", conn) if conn else None
        if conn_doc is not None and conn_doc.model is not None:
            protocol = conn_doc.model.spec.protocol  # type: ignore[attr-defined]
            if protocol != o.type:
                out.append(
                    doc.diag(
                        "TAKT4015",
                        f"{o.type} output uses DataSource {conn!r}, which speaks {protocol}",
                        ("spec", "outputs", i, "connection"),
                    )
                )
    for i, gate in enumerate(spec.gates):
        suite_doc = index.get("TestSuite", gate)
        if suite_doc is not None and suite_doc.model is not None:
            tested = suite_doc.model.spec.model  # type: ignore[attr-defined]
            if tested != spec.model.name:
                out.append(
                    doc.diag(
                        "TAKT4007",
                        f"gate {gate!r} tests model {tested!r}, not {spec.model.name!r}",
                        ("spec", "gates", i),
                    )
                )
    _placement(doc, dep, index, out)


def _bindings(doc: SpecDocument, dep: Deployment, model: Model, index: SpecIndex, out: list[Diagnostic]) -> None:
    inputs = {t.name: t for t in model.spec.inputs}
    bound: dict[str, int] = {}
    for i, b in enumerate(dep.spec.bindings):
        base: Path_ = ("spec", "bindings", i)
        tensor = inputs.get(b.input)
        if tensor is None:
            out.append(
                doc.diag(
                    "TAKT3001",
                    f"model {model.metadata.name!r} has no input {b.input!r}",
                    (*base, "input"),
                    hint=did_you_mean(b.input, inputs),
                )
            )
            continue
        if b.input in bound:
            out.append(
                doc.diag(
                    "TAKT4006", f"input {b.input!r} is already bound by bindings[{bound[b.input]}]", (*base, "input")
                )
            )
            continue
        bound[b.input] = i
        src_doc = index.get("DataSource", b.source)
        if src_doc is None or src_doc.model is None:
            continue
        source: DataSource = src_doc.model  # type: ignore[assignment]
        fields = {f.name: f for f in source.spec.fields}
        width = _width(tensor)
        if b.layout == "tensor":
            _tensor_binding(doc, b, tensor, fields, base, out)
        elif width is not None and len(b.fields) != width:
            out.append(
                doc.diag(
                    "TAKT4002",
                    f"{len(b.fields)} fields bound to input {b.input!r}, which takes {width}",
                    (*base, "fields"),
                    hint=f"shape {tensor.shape}"
                    + (f", features {[f.name for f in tensor.features]}" if tensor.features else ""),
                )
            )
        better = _better_order(b.fields, fields, tensor.features or [])
        if better is not None:
            _order_diag(doc, b, better, fields, tensor, (*base, "fields"), out)
        for j, name in enumerate(b.fields):
            f = fields.get(name)
            if f is None:
                out.append(
                    doc.diag(
                        "TAKT3001",
                        f"DataSource {b.source!r} has no field {name!r}",
                        (*base, "fields", j),
                        hint=did_you_mean(name, fields),
                    )
                )
                continue
            _field_dtype(doc, b.input, f, tensor, (*base, "fields", j), out)
            feature = tensor.features[j] if tensor.features and j < len(tensor.features) else None
            if better is None and feature is not None and not _unit_fits(f, feature):
                out.append(
                    doc.diag(
                        "TAKT4005",
                        f"field {name!r} is in {f.unit}; feature {feature.name!r} expects {feature.unit}",
                        (*base, "fields", j),
                        hint="convert at the source or add a scale, and retrain if in doubt",
                    )
                )
    for name in inputs:
        if name not in bound:
            out.append(
                doc.diag(
                    "TAKT4001", f"model input {name!r} is not bound to any data source", ("spec", "bindings"), key=True
                )
            )


def _field_dtype(
    doc: SpecDocument, input_name: str, f: FieldBase, tensor: Tensor, path: Path_, out: list[Diagnostic]
) -> None:
    """The field's values fit the input's dtype: refused, lossy, or a flag fed to a number."""
    conv = conversion(f.dtype, tensor.dtype, f.range)
    if conv == "invalid":
        out.append(doc.diag("TAKT4003", f"field {f.name!r} is {f.dtype}; input {input_name!r} is {tensor.dtype}", path))
    elif conv == "lossy":
        hint = "declare the field's range: if it shows the precision is kept, this goes away"
        out.append(
            doc.diag(
                "TAKT4004",
                f"field {f.name!r} ({f.dtype}) loses precision as {tensor.dtype}",
                path,
                hint=hint if f.dtype in _FLOAT_MANTISSA and tensor.dtype in _FLOAT_MANTISSA else "",
            )
        )
    elif f.dtype == "bool" and tensor.dtype != "bool":
        out.append(
            doc.diag(
                "TAKT4018",
                f"field {f.name!r} is a bool; input {input_name!r} is {tensor.dtype}, so it arrives as 0 or 1",
                path,
                hint="bind it only if the model was trained on this flag as 0/1",
            )
        )


def _unit_fits(f: FieldBase, feature: Feature) -> bool:
    return not (feature.unit and f.unit and _unit(feature.unit) != _unit(f.unit))


def _better_order(names: list[str], fields: dict[str, FieldBase], features: list[Feature]) -> list[str] | None:
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


def _order_by_unit(names: list[str], fields: dict[str, FieldBase], features: list[Feature]) -> list[str] | None:
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


def _order_diag(
    doc: SpecDocument,
    b: Binding,
    better: list[str],
    fields: dict[str, FieldBase],
    tensor: Tensor,
    path: Path_,
    out: list[Diagnostic],
) -> None:
    """Fields in the wrong order: one finding that names the order, not one unit error per field."""
    features = tensor.features or []
    clash = next(((n, ft) for n, ft in zip(b.fields, features, strict=True) if not _unit_fits(fields[n], ft)), None)
    order = f"fields [{', '.join(b.fields)}] are bound in another order than the features of input {b.input!r}"
    hint = f"bind fields: [{', '.join(better)}]"
    if clash is None:
        out.append(doc.diag("TAKT4019", f"{order}, [{', '.join(ft.name for ft in features)}]", path, hint=hint))
        return
    name, feature = clash
    message = (
        f"{order}: field {name!r} is in {fields[name].unit} where feature {feature.name!r} expects "
        f"{feature.unit}, and reordered every unit fits"
    )
    out.append(doc.diag("TAKT4005", message, path, hint=hint))


def _tensor_binding(doc: SpecDocument, b, tensor: Tensor, fields: dict, base: Path_, out: list[Diagnostic]) -> None:
    """One field carries the whole input (minus the batch axis)."""
    if len(b.fields) != 1:
        out.append(
            doc.diag("TAKT4002", f"layout tensor binds exactly one field, not {len(b.fields)}", (*base, "fields"))
        )
        return
    f = fields.get(b.fields[0])
    if f is None or f.shape is None:
        return
    expected = tensor.shape[1:] if len(tensor.shape) == len(f.shape) + 1 else tensor.shape
    if len(expected) != len(f.shape) or any(
        isinstance(e, int) and e != g for e, g in zip(expected, f.shape, strict=True)
    ):
        out.append(
            doc.diag(
                "TAKT4002",
                f"field {f.name!r} has shape {f.shape}; input {b.input!r} takes {tensor.shape}",
                (*base, "fields", 0),
            )
        )


def _placement(doc: SpecDocument, dep: Deployment, index: SpecIndex, out: list[Diagnostic]) -> None:
    spec = dep.spec
    selected = select_devices(index, dep)
    if not selected and all(index.get("Target", t) for t in spec.targets):
        out.append(
            doc.diag(
                "TAKT4010",
                "no Device runs one of the targets and matches the selector",
                ("spec", "selector") if spec.selector else ("spec", "targets"),
                key=True,
            )
        )
    if spec.selector is not None:
        elsewhere = [d for d in index.devices(spec.selector) if d.model.spec.target not in spec.targets]  # type: ignore[union-attr]
        if elsewhere:
            names = ", ".join(repr(d.name) for d in elsewhere[:5]) + (" …" if len(elsewhere) > 5 else "")
            out.append(
                doc.diag(
                    "TAKT4011",
                    f"{len(elsewhere)} device(s) match the selector but run another target: {names}",
                    ("spec", "targets"),
                    key=True,
                    related=[d.locate(("spec", "target")) for d in elsewhere[:5]],
                )
            )
    canary = spec.rollout.canary
    if (
        selected
        and canary is not None
        and canary.selector is not None
        and not any(canary.selector.matches(d.labels) for d in selected)
    ):
        out.append(
            doc.diag(
                "TAKT4017",
                "the canary selector matches none of the deployment's devices",
                ("spec", "rollout", "canary", "selector"),
                key=True,
            )
        )
    res = spec.resources
    for i, name in enumerate(spec.targets):
        target = index.resolved_targets.get(name)
        if target is None or res is None:
            continue
        if res.memory is not None and target.memory is not None and res.memory > target.memory:
            out.append(
                doc.diag(
                    "TAKT4012",
                    f"requests {res.memory:,} bytes of memory; target {name!r} has {target.memory:,}",
                    ("spec", "resources", "memory"),
                    related=[doc.locate(("spec", "targets", i))],
                    hint=_SHARED_RESOURCES if len(spec.targets) > 1 else "",
                )
            )
        if res.gpu and not any(a.type == "gpu" for a in target.accelerators or []):
            out.append(
                doc.diag(
                    "TAKT4012",
                    f"requests a GPU; target {name!r} has none",
                    ("spec", "resources", "gpu"),
                    hint=_SHARED_RESOURCES if len(spec.targets) > 1 else "",
                )
            )
