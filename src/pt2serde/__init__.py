"""pt2serde: serialization of ``torch.export.ExportedProgram`` (wire schema 8.20, PT2 archives).

Three folders show the layers (``ARCHITECTURE.md`` is the map): ``pt2serde.format`` reads
and writes what a file holds and never imports torch; ``pt2serde.cli`` (inspect, validate,
diff) builds on it, also torch-free; ``pt2serde.bridge`` turns files into torch objects and
back. ``schema``, ``errors`` and ``extensions`` are the torch-free vocabulary all three share.
Everything that touches torch objects is imported on first use, after a check that torch is installed and in the supported range
(``pt2serde.bridge.torch_check``): an ``ImportError`` in one line saying what to install otherwise.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import schema
from .format.canonical import canonicalize
from .format.codec import from_dict, to_json_bytes
from .errors import SerializeError
from .extensions import ExtensionHandler, register_extension
from .schema import SCHEMA_VERSION

__version__ = "0.1.0"

# name -> module (bridge layer, imports torch)
_LAZY = {
    "save": "bridge.package",
    "load": "bridge.package",
    "load_all": "bridge.package",
    "serialize": "bridge.program",
    "deserialize": "bridge.program",
    "ExportedProgramDeserializer": "bridge.program",
    "SerializedArtifact": "bridge.program",
    "ExportedProgramSerializer": "bridge.program",
    "GraphModuleSerializer": "bridge.graph_save",
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
    from .bridge.torch_check import require_torch

    require_torch()  # one-line ImportError when torch is absent or outside the supported range
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
