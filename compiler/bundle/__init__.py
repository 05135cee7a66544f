"""The bundle format: the contract between the compiler (writes) and the agent (verifies).

Standard library and `cryptography` only, on purpose: a device imports this module without
pydantic, jinja2 or onnx.
A bundle is a directory holding files and MANIFEST.json (every file's path, size, sha256 and
mode, and provenance). The bundle digest is the sha256 of the canonical manifest without its
own digest field, so it binds every byte and every name.

The names below are imported on first use (PEP 562 `__getattr__`): a process that needs only
`compiler.bundle.tree` or `compiler.bundle.runner`, as every `takt validate` and `takt test` does,
does not load `cryptography` for the signatures of `desired`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compiler.bundle.activation import Activation
    from compiler.bundle.desired import (
        DESIRED,
        SIGNATURE,
        BundleRef,
        DesiredState,
        ShadowOf,
        key_id,
        load_public_key,
        sign,
        verify_signature,
    )
    from compiler.bundle.manifest import (
        MANIFEST,
        FileEntry,
        Manifest,
        canonical_json,
        verify_bundle,
        write_bundle,
    )

_HOME = {
    "Activation": "activation",
    **dict.fromkeys(
        ("DESIRED", "SIGNATURE", "BundleRef", "DesiredState", "ShadowOf", "key_id", "load_public_key", "sign",
         "verify_signature"),
        "desired",
    ),
    **dict.fromkeys(
        ("MANIFEST", "FileEntry", "Manifest", "canonical_json", "verify_bundle", "write_bundle"), "manifest"
    ),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # __import__, not importlib.import_module: `python -X importtime` sees (and times) this import
    value = getattr(__import__(f"{__name__}.{home}", fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


__all__ = [
    "DESIRED",
    "MANIFEST",
    "SIGNATURE",
    "Activation",
    "BundleRef",
    "DesiredState",
    "FileEntry",
    "Manifest",
    "ShadowOf",
    "canonical_json",
    "key_id",
    "load_public_key",
    "sign",
    "verify_bundle",
    "verify_signature",
    "write_bundle",
]
