"""onnx's compiled core (checker, shape inference, operator schemas) and its protobuf classes, without `import onnx`.

`onnx/__init__` imports numpy and ml_dtypes (about 1.5 s of CPU, ml_dtypes' extension alone 1.4 s) for
helpers the model check never calls; the check needs only onnx's C++ extension and the generated
`onnx_ml_pb2` module, which depend on nothing but google.protobuf. Both are loaded from the installed
onnx package under their own module names, so a later `import onnx` in the same process reuses them
(one extension instance, one registration of the .proto in protobuf's default pool) and gets the same
classes. The functions below are what onnx's Python wrappers call, with the same arguments.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import onnx

_EXTENSION = "onnx.onnx_cpp2py_export"
_PROTO = "onnx.onnx_ml_pb2"
MAXIMUM_PROTOBUF = 2**31 - 1  # onnx.checker.MAXIMUM_PROTOBUF
_LOADING = threading.Lock()  # like the import lock: two threads never load the extension twice


def _load(name: str, path: Path) -> ModuleType:
    if path.suffix == ".py":
        spec = importlib.util.spec_from_file_location(name, path)
    else:
        loader = importlib.machinery.ExtensionFileLoader(name, str(path))
        spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None or spec.loader is None:  # pragma: no cover - only a broken onnx install
        raise ImportError(f"cannot load {name} from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@cache
def _modules() -> tuple[Any, Any]:
    """(the C++ extension, the generated protobuf module): onnx's own if onnx is imported already."""
    with _LOADING:
        return _find_or_load()


def _find_or_load() -> tuple[Any, Any]:
    if _EXTENSION in sys.modules and _PROTO in sys.modules:
        return sys.modules[_EXTENSION], sys.modules[_PROTO]
    found = importlib.machinery.PathFinder.find_spec("onnx")
    if found is None or not found.submodule_search_locations:
        raise ImportError("the onnx package is not installed")
    package = Path(next(iter(found.submodule_search_locations)))
    extension = sys.modules.get(_EXTENSION)
    if extension is None:
        binaries = [package / f"onnx_cpp2py_export{s}" for s in importlib.machinery.EXTENSION_SUFFIXES]
        binary = next((b for b in binaries if b.is_file()), None)
        if binary is None:  # pragma: no cover - only a broken onnx install
            raise ImportError(f"onnx's extension is missing in {package}")
        extension = _load(_EXTENSION, binary)
    proto = sys.modules.get(_PROTO) or _load(_PROTO, package / "onnx_ml_pb2.py")
    return extension, proto


def model_proto() -> type[onnx.ModelProto]:
    return cast("type[onnx.ModelProto]", _modules()[1].ModelProto)


def attribute_graph_types() -> tuple[int, int]:
    """AttributeProto.GRAPH and AttributeProto.GRAPHS."""
    attr = _modules()[1].AttributeProto
    return int(attr.GRAPH), int(attr.GRAPHS)


def check_model(data: bytes) -> None:
    """onnx.checker.check_model(data) with its defaults: raises onnx's ValidationError (or a C++ error)."""
    if len(data) > MAXIMUM_PROTOBUF:  # onnx's wrapper refuses these the same way
        raise ValueError("This protobuf of onnx model is too large (>2GiB). Call check_model with model path instead.")
    _modules()[0].checker.check_model(data, False, False, False)


def infer_shapes(data: bytes, check_type: bool, strict_mode: bool) -> bytes:
    """onnx.shape_inference.infer_shapes on serialised bytes (data_prop off), serialised back."""
    return cast(bytes, _modules()[0].shape_inference.infer_shapes(data, check_type, strict_mode, False))


def get_schema(op_type: str, version: int, domain: str) -> Any:
    """onnx.defs.get_schema: raises for an operator onnx does not know at that version."""
    return _modules()[0].defs.get_schema(op_type, version, domain)


def variadic() -> Any:
    """onnx.defs.OpSchema.FormalParameterOption.Variadic."""
    return _modules()[0].defs.OpSchema.FormalParameterOption.Variadic
