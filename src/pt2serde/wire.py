"""Building blocks for the wire types in :mod:`pt2serde.schema`.

* :func:`wire` declares a field with its thrift field id (the id never appears in JSON;
  it keeps the schema comparable with ``export_schema.thrift`` for C++ consumers).
* :func:`struct` turns a class into a slotted dataclass.
* :class:`Union` is a tagged union: exactly one member is set. ``Cls.create(tag=value)``
  builds one; ``.type`` is the tag, ``.value`` the payload, and ``obj.<tag>`` reads the
  payload back (reading any other member raises ``AttributeError``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

__all__ = ["wire", "struct", "Union"]

_RESERVED = frozenset({"type", "_type", "value", "create", "_of"})
_new = object.__new__
_set = object.__setattr__


def wire(fid: int, default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING) -> Any:
    """A schema field with thrift id ``fid`` and an optional default (or default factory)."""
    return dataclasses.field(default=default, default_factory=factory, metadata={"id": fid})


def struct(cls: type) -> type:
    """A wire struct: a slotted dataclass whose fields were declared with :func:`wire`."""
    return dataclasses.dataclass(slots=True)(cls)


def _member_property(tag: str) -> property:
    """``union.<tag>``: the payload when ``tag`` is the member set, else ``AttributeError``
    (a property, not ``__getattr__``: member reads are on every hot path of load)."""

    def get(self: Union) -> Any:
        if self.type == tag:
            return self.value
        raise AttributeError(f"Field {tag} is not set.")

    def put(self: Union, value: Any) -> None:
        if self.type != tag:
            raise AttributeError(f"cannot set {tag!r}: this {type(self).__name__} holds {self.type!r}")
        _set(self, "value", value)

    return property(get, put, doc=f"The payload if this union holds ``{tag}``.")


class _UnionMeta(type):
    """Collects the ``wire()`` member declarations of a union class body into ``MEMBERS``.

    Each declaration becomes a read/write property of the member (see
    :func:`_member_property`) and every union class gets empty ``__slots__``.
    """

    def __new__(mcls, name: str, bases: tuple, ns: dict[str, Any]):
        members: dict[str, int] = {}
        for member in ns.get("__annotations__", {}):
            declared = ns.get(member)
            if not isinstance(declared, dataclasses.Field) or "id" not in declared.metadata:
                continue  # e.g. the base class's ClassVar annotation
            if member in _RESERVED:
                raise TypeError(f"{name}.{member}: member name is reserved")
            members[member] = declared.metadata["id"]
            ns[member] = _member_property(member)
        ns.setdefault("__slots__", ())
        cls = super().__new__(mcls, name, bases, ns)
        if bases:
            cls.MEMBERS = members
        return cls


class Union(metaclass=_UnionMeta):
    """Base of every tagged union of the schema (see the module docstring)."""

    __slots__ = ("type", "value")
    MEMBERS: ClassVar[dict[str, int]] = {}

    def __init__(self, **member: Any) -> None:
        if len(member) != 1:
            raise TypeError(
                f"{type(self).__name__} takes exactly one member, got {sorted(member) or 'none'}"
            )
        ((tag, value),) = member.items()
        if tag not in self.MEMBERS:
            raise TypeError(
                f"{tag!r} is not a member of {type(self).__name__}; members: {', '.join(self.MEMBERS)}"
            )
        object.__setattr__(self, "type", tag)
        object.__setattr__(self, "value", value)

    @classmethod
    def create(cls, **member: Any):
        """Build the union with exactly one member set: ``Argument.create(as_int=3)``."""
        return cls(**member)

    @classmethod
    def _of(cls, tag: str, value: Any):
        """Unchecked constructor for pt2serde's own hot paths (``tag`` must be a member)."""
        obj = _new(cls)
        _set(obj, "type", tag)
        _set(obj, "value", value)
        return obj

    @property
    def _type(self) -> str:
        """Alias of ``.type`` (the name PyTorch's own union class uses)."""
        return self.type

    def __getattr__(self, name: str) -> Any:
        # Reached when a member property raised (another member is set, or none yet).
        if name in type(self).MEMBERS:
            try:
                tag = object.__getattribute__(self, "type")
            except AttributeError:
                tag = None
            if name == tag:
                return object.__getattribute__(self, "value")
            raise AttributeError(f"Field {name} is not set.")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).MEMBERS:
            if name != self.type:
                raise AttributeError(
                    f"cannot set {name!r}: this {type(self).__name__} holds {self.type!r}"
                )
            name = "value"
        object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Union):
            return NotImplemented
        return type(self) is type(other) and self.type == other.type and self.value == other.value

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass structs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.type}={self.value!r})"

    def __reduce__(self):
        return (_rebuild_union, (type(self), self.type, self.value))


def _rebuild_union(cls: type, tag: str, value: Any) -> Union:
    return cls(**{tag: value})
