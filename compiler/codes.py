"""The catalogue of stable diagnostic codes.

Codes never change meaning once released: users silence them by id in CI scripts, in
`takt.yaml` and inline. The first digit groups them by pipeline stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.diagnostics import Diagnostic, Location, Severity


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    severity: Severity
    help: str = ""
    split_from: str = ""
    """The code this one was split from, when one code once meant several things (README, `takt rules`)."""


E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO  # noqa: E741

_RULES = [
    # 0xxx: reading files and YAML
    Rule("TAKT0001", "YAML syntax error", E, "Fix the YAML syntax at the marked position."),
    Rule("TAKT0002", "Duplicate mapping key", E, "YAML keys must be unique; the later value would win silently."),
    Rule("TAKT0003", "Tab used for indentation", E, "YAML forbids tabs in indentation; indent with spaces."),
    Rule("TAKT0004", "File is not valid UTF-8", E, "Save the file as UTF-8."),
    Rule("TAKT0005", "File too large", E, "Split the file or raise `limits.maxFileBytes` in takt.yaml."),
    Rule("TAKT0006", "Alias expansion too large or recursive", E, "Reduce anchors/aliases (alias bombs are refused)."),
    Rule(
        "TAKT0007",
        "YAML tag not allowed",
        E,
        "Only plain YAML (maps, lists, strings, numbers, booleans, null) is accepted.",
    ),
    Rule(
        "TAKT0008",
        "Document is not a mapping",
        E,
        "Each document must be a mapping with apiVersion, kind, metadata and spec.",
    ),
    Rule("TAKT0009", "File cannot be read", E),
    Rule("TAKT0010", "Merge key value is not a mapping", E, "`<<` takes a mapping or a list of mappings."),
    Rule(
        "TAKT0011",
        "Spec file is a link out of the project or not a regular file",
        E,
        "Spec files are read only inside the project; commit the file itself, not a link to it.",
    ),
    Rule("TAKT0012", "Nesting too deep", E, "Specs need a few levels of nesting; deeper input is refused unread."),
    Rule(
        "TAKT0013",
        "Mapping key is not a plain scalar",
        E,
        "Keys are plain names (`? [a, b]` and other complex keys are refused).",
        split_from="TAKT0008",
    ),
    # 1xxx: structure of documents
    Rule("TAKT1001", "Unknown or missing apiVersion", E, "Use `apiVersion: takt/v1`."),
    Rule("TAKT1002", "Unknown or missing kind", E),
    Rule("TAKT1003", "Required field missing", E),
    Rule("TAKT1004", "Unknown field", E, "Unknown fields are errors so that typos never pass silently."),
    Rule("TAKT1005", "Wrong type", E),
    Rule(
        "TAKT1006",
        "Invalid name",
        E,
        "Names are DNS labels: lower-case letters, digits and '-', at most 63 characters.",
    ),
    Rule("TAKT1007", "Value not allowed", E),
    Rule("TAKT1008", "Unknown variant", E),
    Rule("TAKT1009", "Invalid quantity, duration or version", E),
    Rule(
        "TAKT1010",
        "Literal secret in a spec",
        E,
        "Specs are committed to Git: reference secrets (e.g. `vault:path#key`, `env:VAR`), never inline them.",
    ),
    Rule(
        "TAKT1011",
        "Invalid secret reference",
        E,
        "Use `<scheme>:<path>` with scheme env, file, vault, k8s, aws-sm, azure-kv or gcp-sm.",
    ),
    Rule("TAKT1012", "Invalid value", E),
    Rule(
        "TAKT1013",
        "Invalid device public key",
        E,
        "Paste the line `takt agent keygen` printed (`ssh-ed25519 AAAA…`), or an ed25519 PEM public key.",
    ),
    Rule(
        "TAKT1014",
        "Metric threshold outside the metric's range",
        E,
        "Accuracy, precision, recall and F1 are proportions: their threshold is within 0..1.",
        split_from="TAKT1007",
    ),
    # 2xxx: data-access addresses, by protocol
    Rule("TAKT2001", "Invalid OPC UA node id", E, "Use `nsu=<namespace URI>;s=<id>` or `ns=<index>;i|s|g|b=<id>`."),
    Rule(
        "TAKT2002",
        "OPC UA node id uses a namespace index",
        W,
        "Namespace indexes can change between servers and restarts; prefer `nsu=<namespace URI>`.",
    ),
    Rule("TAKT2003", "Invalid OPC UA security settings", E),
    Rule(
        "TAKT2004",
        "OPC UA connection is not secured",
        W,
        "Use securityMode Sign or SignAndEncrypt on the shop floor network.",
    ),
    Rule(
        "TAKT2005",
        "Deprecated OPC UA security policy",
        W,
        "Basic128Rsa15 and Basic256 are deprecated (SHA-1); use Basic256Sha256 or newer.",
    ),
    Rule("TAKT2006", "Invalid endpoint URL", E, "OPC UA endpoints, MQTT brokers and HTTP outputs are URLs of their schemes."),
    Rule(
        "TAKT2007",
        "OPC UA null node id",
        E,
        "i=0, and s=, b= or the all-zero GUID in namespace 0, are the null node id: no node has it (Part 3 §8.2.4).",
    ),
    Rule(
        "TAKT2008",
        "OPC UA node id has no namespace",
        W,
        "Without ns= or nsu= a node id is in namespace 0, the OPC UA namespace, whose ids are all numeric; "
        "write `nsu=<namespace URI>;s=<id>`.",
    ),
    Rule("TAKT2010", "Invalid MQTT topic", E),
    Rule(
        "TAKT2011",
        "Invalid Sparkplug B topic",
        E,
        "Sparkplug B topics are spBv1.0/<group>/<type>/<edge node>[/<device>].",
    ),
    Rule("TAKT2012", "Invalid JSON path", E, "Use a JSONPath such as `$.sensors.temp` or `$.values[0]`."),
    Rule(
        "TAKT2013",
        "MQTT field address does not fit the payload encoding",
        E,
        "A Sparkplug B field names its `metric` (protobuf payloads); a field of a JSON source names a `jsonPath`.",
        split_from="TAKT2011",
    ),
    Rule("TAKT2020", "Invalid Modbus address", E),
    Rule("TAKT2021", "Modbus data type does not fit the register type", E),
    Rule(
        "TAKT2022",
        "Field dtype cannot hold the Modbus value",
        E,
        "The field's dtype must hold what the register decodes to (dataType, then × scale + offset).",
    ),
    Rule(
        "TAKT2023",
        "Modbus fields overlap",
        E,
        "Two values decoded from shared registers cannot both be right; bits of one register may be shared.",
    ),
    Rule(
        "TAKT2024",
        "Modbus output cannot be written",
        E,
        "A Modbus output writes one value per frame into a holding-register or coil over Modbus TCP.",
    ),
    Rule(
        "TAKT2025",
        "Modbus output rounds the prediction",
        W,
        "An integer register holds (prediction − offset) / scale rounded: a scale keeps the decimals.",
    ),
    Rule(
        "TAKT2026",
        "Modbus settings do not fit the transport",
        E,
        "RTU needs `serial:` and a unit id 1..247; serial settings apply to RTU only.",
        split_from="TAKT2020",
    ),
    Rule(
        "TAKT2027",
        "Modbus scale is 0",
        E,
        "A reading is raw × scale + offset: scale 0 makes every reading the offset, and an output divides by it.",
        split_from="TAKT2020",
    ),
    Rule(
        "TAKT2028",
        "Invalid Modbus endpoint",
        E,
        "Modbus TCP: host:port (usually port 502); Modbus RTU: a serial device such as /dev/ttyUSB0 or COM3.",
        split_from="TAKT2006",
    ),
    Rule(
        "TAKT2029",
        "Modbus address looks like Modicon notation",
        W,
        "`address` is the register number within its registerType: Modicon 40101 is holding-register 100.",
        split_from="TAKT2020",
    ),
    # 3xxx: references between documents
    Rule("TAKT3001", "Reference does not resolve", E),
    Rule("TAKT3002", "Duplicate document name", E, "Names are unique per kind across the whole spec repo."),
    Rule("TAKT3003", "Cycle in extends", E),
    Rule(
        "TAKT3004",
        "Pinned version differs",
        E,
        "The Deployment pins a model version that the Model spec does not have.",
    ),
    Rule("TAKT3005", "Duplicate device id", E),
    Rule("TAKT3006", "Latency budget for an unknown target or class", E, "Name a Target or a target class."),
    Rule(
        "TAKT3007",
        "Duplicate field name in a DataSource",
        E,
        "Bindings name a DataSource's fields: each name once per DataSource.",
        split_from="TAKT3002",
    ),
    Rule(
        "TAKT3008",
        "Duplicate test name in a TestSuite",
        E,
        "Reports, gates and `takt test --suite` name a suite's tests: each name once per suite.",
        split_from="TAKT3002",
    ),
    Rule(
        "TAKT3009",
        "Drift monitoring names a suite the deployment is not gated on",
        E,
        "The bins of `monitoring.drift` come from a gating suite's dataset: add the suite to `spec.gates`.",
    ),
    # 4xxx: semantics across documents
    Rule("TAKT4001", "Model input not bound", E, "Every model input must be fed by a data-source binding."),
    Rule("TAKT4002", "Binding field count does not match the model input", E),
    Rule("TAKT4003", "Binding dtype does not match the model input", E),
    Rule("TAKT4004", "Lossy dtype conversion in a binding", W),
    Rule("TAKT4005", "Unit mismatch between data-source field and model feature", E),
    Rule("TAKT4006", "Model input bound twice", E),
    Rule("TAKT4007", "Gating test suite tests another model", E),
    Rule("TAKT4008", "Deployment output refers to an unknown model output", E),
    Rule("TAKT4010", "Deployment selects no device", W),
    Rule("TAKT4011", "Selected device runs a target the deployment does not list", W),
    Rule("TAKT4012", "Resources exceed the target", E),
    Rule("TAKT4013", "Target is incomplete after extends", E),
    Rule("TAKT4014", "Inconsistent model signature", E),
    Rule(
        "TAKT4015",
        "Target's os or architecture does not suit its class",
        E,
        "Each target class runs on its own platforms; `takt rules` and the class folder say which.",
    ),
    Rule("TAKT4016", "Test refers to an unknown dataset, input or output", E),
    Rule("TAKT4017", "Canary selects no device", W),
    Rule(
        "TAKT4018",
        "Boolean field bound to a numeric model input",
        W,
        "The flag reaches the model as 0 or 1; a physical feature bound to it is most likely a mistake.",
    ),
    Rule(
        "TAKT4019",
        "Binding fields in another order than the model's features",
        W,
        "Each field feeds the position of its feature in the input's last axis; bind them in the features' order.",
    ),
    # 4030..4039: split from TAKT4015, which once meant all of them
    Rule(
        "TAKT4030",
        "Embedded target declares no flash size",
        E,
        "The model is linked into flash: set `flash:`.",
        split_from="TAKT4015",
    ),
    Rule(
        "TAKT4031",
        "Embedded target without a minimal onnxruntime build",
        E,
        "Set runtime.minimalBuild: true (operators are then taken from the models) or runtime.allowedOperators.",
        split_from="TAKT4015",
    ),
    Rule(
        "TAKT4032",
        "disableCpuFallback without an accelerator execution provider",
        W,
        "Without an accelerator provider every kernel runs on the CPU; the setting has nothing to forbid.",
        split_from="TAKT4015",
    ),
    Rule(
        "TAKT4033",
        "Output's connection speaks another protocol",
        E,
        "An output writes through a DataSource of its own protocol: an opcua output through an opcua source.",
        split_from="TAKT4015",
    ),
    Rule(
        "TAKT4034",
        "Unknown target class",
        E,
        "Classes are the folders of targets/ and installed packages in the entry-point group `takt.targets`.",
    ),
    Rule(
        "TAKT4035",
        "Target profile does not fit its class",
        E,
        "Each class declares its profile's fields and types (targets/<class>/profile.py); `takt validate` names the field.",
    ),
    # 4040..4049: rollouts
    Rule(
        "TAKT4040",
        "Rollout section does not fit the strategy",
        E,
        "canary is read by strategy canary (or shadow with then: canary), shadow and then by strategy shadow.",
    ),
    Rule("TAKT4041", "Rollout strategy misses its section", E, "Give the section the strategy (or then) names."),
    Rule(
        "TAKT4042",
        "Rollout step selects devices ambiguously",
        E,
        "A canary or shadow step selects its devices by exactly one of selector and percentage.",
    ),
    Rule("TAKT4043", "Shadow selects no device", W),
    # 5xxx: models and data on disk, and what runs where
    Rule("TAKT5001", "Artifact or dataset missing", E, "Paths are relative to the project root."),
    Rule(
        "TAKT5002", "Digest mismatch", E, "The file changed since its sha256 was recorded; if intended, run `takt pin`."
    ),
    Rule("TAKT5003", "Not an ONNX model", E),
    Rule("TAKT5004", "Invalid ONNX model", E, "onnx.checker or type inference rejects the model."),
    Rule("TAKT5005", "IR version too new for the target runtime", E),
    Rule("TAKT5006", "Opset too new for the target runtime", E),
    Rule(
        "TAKT5007",
        "Operator cannot run on the target",
        E,
        "No kernel of the target's onnxruntime release and execution providers implements it.",
    ),
    Rule("TAKT5008", "Operator not in the minimal build", E),
    Rule("TAKT5009", "Declared tensor missing from the model", E, "The model has no input or output of that name."),
    Rule("TAKT5010", "Declared dtype differs from the model", E),
    Rule("TAKT5011", "Declared shape differs from the model", E),
    Rule("TAKT5012", "Model does not fit the target's memory", E, "File plus activations exceed `memory:`."),
    Rule("TAKT5013", "Quantization required by the target", E),
    Rule(
        "TAKT5014",
        "Kernel table approximated",
        W,
        "The target's onnxruntime release has no shipped kernel table: the nearest older one stands in.",
    ),
    Rule("TAKT5015", "Custom operator domain", E, "The operator needs a custom-op library registered on the device."),
    Rule("TAKT5016", "Operator depends on the device environment", W),
    Rule("TAKT5018", "Remote artifact not checked here", I, "Remote artifacts are fetched and checked at build time."),
    Rule(
        "TAKT5019",
        "Path leaves the project or is not a regular file",
        E,
        "Models, datasets and samples are read only inside the project: no links out of it, no devices or FIFOs.",
    ),
    Rule(
        "TAKT5020",
        "Dataset unreadable",
        E,
        "Parquet, Arrow IPC/Feather, CSV or NPZ, complete and not changing while it is read; the message says what failed.",
    ),
    Rule(
        "TAKT5021",
        "Dataset column type does not match the DataSource field",
        E,
        "A column named like a field must hold numbers for a numeric field (no strings), strings for a string one.",
    ),
    Rule("TAKT5022", "Dataset column unit differs from the DataSource field", E, "Convert the column or fix the unit."),
    Rule("TAKT5023", "Dataset has no rows", E, "A test on an empty dataset proves nothing."),
    Rule(
        "TAKT5024",
        "Optional extra not installed",
        E,
        "The spec names DVC or MLflow: install the extra the message names (`pip install 'takt[dvc]'` or `'takt[mlflow]'`).",
    ),
    Rule(
        "TAKT5025",
        "DVC-tracked file cannot be read",
        E,
        "Not in the DVC cache nor its remote, or its content is not the md5 the .dvc file or dvc.lock records.",
    ),
    Rule(
        "TAKT5026",
        "MLflow model cannot be resolved",
        E,
        "The tracking server (MLFLOW_TRACKING_URI) has no such model version or run artifact, or cannot be reached.",
    ),
    Rule(
        "TAKT5027",
        "MLflow model moved",
        E,
        "The registry now serves other bytes than the sha256 pinned in the spec: register a new version, or re-pin on purpose.",
    ),
    Rule(
        "TAKT5028",
        "Fetched artifact cannot be stored",
        E,
        "Not enough free space, or the cache is not writable; nothing partial is kept.",
    ),
    # 5029..5032: split from TAKT5014, 5012, 5001 and 5009, which once meant two things each
    Rule(
        "TAKT5029",
        "No kernel table for an execution provider",
        W,
        "Takt ships kernel tables for the CPU provider (and a few others): operators are checked against the rest only.",
        split_from="TAKT5014",
    ),
    Rule(
        "TAKT5030",
        "Model file exceeds the target's flash",
        E,
        "The class links the model into firmware: the file must fit `flash:`.",
        split_from="TAKT5012",
    ),
    Rule(
        "TAKT5031",
        "Artifact or dataset cannot be read",
        E,
        "The file exists but reading it failed (permissions, I/O error); the message says why.",
        split_from="TAKT5001",
    ),
    Rule(
        "TAKT5032",
        "Model tensor not declared in the spec",
        E,
        "Declare every input and output the model has, so bindings and outputs can name them.",
        split_from="TAKT5009",
    ),
    # 6xxx: rendering and bundles
    Rule("TAKT6002", "Target class cannot render this deployment", E),
    Rule("TAKT6003", "Target class warning", W),
    Rule(
        "TAKT6004",
        "Latency not judged for this target",
        W,
        "The build host's timing does not stand for this target's hardware, or no budget names it; give the"
        " latency test a `budgets` entry for the target or its class, and measure on the device.",
    ),
    # 8xxx: policies (user rules carry their own id; these are about the Policy itself)
    Rule("TAKT8001", "Invalid policy schema", E, "The cerberus schema of this Policy is not valid."),
    # 9xxx: project and tool
    Rule("TAKT9001", "No takt.yaml project file", W, "Run `takt init` or add a takt.yaml at the spec repo root."),
    Rule("TAKT9002", "Spec glob matches no file", W),
    Rule("TAKT9003", "Invalid project file", E),
    Rule("TAKT9004", "Unknown code in an ignore list", W),
]

RULES: dict[str, Rule] = {r.code: r for r in _RULES}


def all_rules() -> dict[str, Rule]:
    """The table plus the rules installed target classes bring for their own `validate` hooks."""
    from compiler.render.plugins import target_classes  # a class module may import this one

    out = dict(RULES)
    for tc in target_classes().values():
        for r in tc.rules:
            out.setdefault(r.code, r)
    return out


def rule(code: str) -> Rule:
    """The rule for a code (a target class's own codes included); user policy ids get a generic entry."""
    return RULES.get(code) or all_rules().get(code) or Rule(code, "Policy violated", Severity.ERROR)


def located(code: str, message: str, location: Location, hint: str = "") -> Diagnostic:
    """A diagnostic whose severity is this table's: the one way to make one outside a SpecDocument."""
    return Diagnostic(code, rule(code).severity, message, location, hint)
