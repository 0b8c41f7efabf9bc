"""Call targets that are not ``torch.ops`` operators: user-registered extension handlers.

A handler tells the serializer how to name such a target (``#<namespace>:<op_name>`` on
the wire), how to find it again by name, and which op schema its arguments follow.
"""

from __future__ import annotations

import threading
from typing import Any

from .errors import SerializeError

__all__ = [
    "ExtensionHandler",
    "register_extension",
    "extension_handler_for",
    "extension_handler_by_namespace",
    "registered_extension_types",
]


class ExtensionHandler:
    """Base class for handlers of extension call targets; override all four classmethods."""

    @classmethod
    def namespace(cls) -> str:
        raise NotImplementedError(f"{cls.__name__}.namespace() must be implemented")

    @classmethod
    def to_op_name(cls, op: Any) -> str:
        raise NotImplementedError(f"{cls.__name__}.to_op_name() must be implemented")

    @classmethod
    def from_op_name(cls, name: str) -> Any:
        raise NotImplementedError(f"{cls.__name__}.from_op_name() must be implemented")

    @classmethod
    def op_schema(cls, op: Any):
        """The ``torch.FunctionSchema`` the op's arguments and returns follow."""
        raise NotImplementedError(f"{cls.__name__}.op_schema() must be implemented")


_lock = threading.Lock()
_by_type: dict[type, type[ExtensionHandler]] = {}
_by_namespace: dict[str, type[ExtensionHandler]] = {}


def register_extension(op_type: type, handler_cls: type[ExtensionHandler]) -> None:
    """Serialize call targets of type ``op_type`` with ``handler_cls``.

    Raises ``SerializeError`` if the handler is not an :class:`ExtensionHandler`, if
    ``op_type`` is not a class, is a torch or builtin type, or is already registered, or
    if the handler's namespace is taken.
    """
    if not (isinstance(handler_cls, type) and issubclass(handler_cls, ExtensionHandler)):
        raise SerializeError(f"Expected an ExtensionHandler subclass, got {handler_cls!r}")
    if not isinstance(op_type, type):
        raise SerializeError(f"op_type must be a class, got {type(op_type).__name__}")
    module = op_type.__module__ or ""
    if module.startswith("torch") or module.startswith("builtins"):
        raise SerializeError(f"op_type {op_type.__qualname__} from module {module} cannot be an extension")
    namespace = handler_cls.namespace()
    if not isinstance(namespace, str) or not namespace or ":" in namespace:
        raise SerializeError(f"extension namespace must be a non-empty string without ':', got {namespace!r}")
    with _lock:
        if op_type in _by_type:
            raise SerializeError(f"{op_type.__qualname__} is already registered")
        if namespace in _by_namespace:
            raise SerializeError(f"extension namespace {namespace!r} is already registered")
        _by_type[op_type] = handler_cls
        _by_namespace[namespace] = handler_cls


def extension_handler_for(target: Any) -> type[ExtensionHandler] | None:
    return _by_type.get(type(target)) if _by_type else None


def extension_handler_by_namespace(namespace: str) -> type[ExtensionHandler] | None:
    return _by_namespace.get(namespace)


def registered_extension_types() -> tuple[type, ...]:
    return tuple(_by_type)
