"""pt2serde: serialization of ``torch.export.ExportedProgram`` (wire schema 8.20, PT2 archives).

The format layer (``schema``, ``codec``, ``canonicalize``, the archive reader and the CLI's
inspect/validate/diff) works without torch. Everything that touches torch objects is
imported on first use, after a check that torch is installed and in the supported range
(``pt2serde._torch_check``): an ``ImportError`` in one line saying what to install otherwise.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import schema
from .canonical import canonicalize
from .codec import from_dict, to_json_bytes
from .errors import SerializeError
from .extensions import ExtensionHandler, register_extension
from .schema import SCHEMA_VERSION

__version__ = "0.1.0"

# name -> module (bridge layer, imports torch)
_LAZY = {
    "save": "package",
    "load": "package",
    "load_all": "package",
    "serialize": "program",
    "deserialize": "program",
    "ExportedProgramDeserializer": "program",
    "SerializedArtifact": "program",
    "ExportedProgramSerializer": "program",
    "GraphModuleSerializer": "graph",
}

__all__ = sorted(
    [
        "schema",
        "canonicalize",
        "from_dict",
        "to_json_bytes",
        "SerializeError",
        "ExtensionHandler",
        "register_extension",
        "SCHEMA_VERSION",
        *_LAZY,
    ]
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pt2serde' has no attribute {name!r}")
    from ._torch_check import require_torch

    require_torch()  # one-line ImportError when torch is absent or outside the supported range
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
