"""Budgets for values rebuilt from a pickle, and how refusals show them (torch-free).

A pickle's memo lets a few bytes stand for a huge tree (the same list referenced again and
again): :func:`check_tree` counts the expansion of a result as a DAG, bounded by
:func:`work_budget` of the input size, refuses containers nested deeper than
:data:`MAX_DEPTH` and any :class:`Internal` value left in the result; :func:`expanded_size`
bounds a dict key or set member (hashing and ``==`` walk them whole). :func:`short` and
:func:`printable` show a value in an error message in bounded space, whatever its size.
"""

from __future__ import annotations

import reprlib
from typing import Any, Iterable, Iterator

from ..errors import SerializeError

__all__ = ["Internal", "MAX_DEPTH", "MAX_KEY_NODES", "MIN_NODES", "NODES_PER_BYTE", "check_tree",
           "expanded_size", "printable", "short", "work_budget"]

MAX_DEPTH = 256  # containers nested deeper than this are refused
MAX_KEY_NODES = 64  # objects a dict key / set member may expand to (hashing and == walk them all)
MIN_NODES = 1 << 16  # the result may always expand to this many objects ...
NODES_PER_BYTE = 2  # ... or to this many per pickle byte, whichever is more
_MAX_MESSAGE_VALUE = 120


class Internal:
    """A value builders may exchange but the result must never contain.

    Subclasses (a global used as a value, a storage handle, a type marker) override
    :meth:`describe` so that refusals say what was found.
    """

    __slots__ = ()

    def describe(self) -> str:
        return type(self).__name__


_SEQUENCES = (list, tuple, set, frozenset)


def _children(obj: Any) -> Iterator[Any] | None:
    """The values inside a container, iterated with the base type's own methods (never a
    subclass's ``__iter__``); None for anything that is not a container."""
    if isinstance(obj, tuple):
        return tuple.__iter__(obj)
    if isinstance(obj, list):
        return list.__iter__(obj)
    if isinstance(obj, (set, frozenset)):
        return (set.__iter__ if isinstance(obj, set) else frozenset.__iter__)(obj)
    if isinstance(obj, dict):
        extra = getattr(obj, "__dict__", None) if type(obj) is not dict else None
        parts: list[Iterable[Any]] = [dict.keys(obj), dict.values(obj)]
        if extra:
            parts.append(extra.values())
        return (x for part in parts for x in part)
    if type(obj) is slice:
        return iter((obj.start, obj.stop, obj.step))
    return None


def _count(obj: Any) -> int:
    return len(obj) if type(obj) is not slice else 3


def expanded_size(value: Any, limit: int) -> int:
    """How many objects ``value`` holds when expanded as a tree (each shared reference counted
    again: what hashing, ``==``, ``repr`` or pytree walk), or ``limit + 1`` once it is more.

    Costs at most ``limit`` steps, whatever the value.
    """
    count = 0
    stack = [value]
    while stack:
        v = stack.pop()
        count += 1
        it = _children(v)
        if it is None:
            continue
        if count + _count(v) > limit:
            return limit + 1
        stack.extend(it)
    return count


def work_budget(nbytes: int) -> int:
    """How many objects the result of an ``nbytes`` pickle may expand to (see the module docstring).

    Without shared containers a pickle spends at least one byte per object, so a real file
    stays below one object per byte; only memo references to containers expand further.
    """
    return max(MIN_NODES, NODES_PER_BYTE * nbytes)


def check_tree(root: Any, *, max_depth: int = MAX_DEPTH, max_nodes: int | None = None,
               what: str = "result") -> None:
    """Refuse internal values, reference cycles, nesting deeper than ``max_depth`` and, when
    ``max_nodes`` is given, a tree expansion of more than ``max_nodes`` objects.

    Walks containers (lists, tuples, sets, dicts and their attribute dicts, slices)
    iteratively; each container is visited once (its height and expanded size are kept), so
    the walk is linear in the graph while the size counts every shared reference again.
    """
    if isinstance(root, Internal):
        raise SerializeError(f"{root.describe()} cannot be part of the {what}")
    it = _children(root)
    if it is None:
        return
    cap = max_nodes if max_nodes is not None else 1 << 62
    known_at: dict[int, tuple[int, int]] = {}  # id -> (height, expanded size) of finished containers
    on_path: set[int] = {id(root)}
    stack: list[list[Any]] = [[root, it, 0, 1]]  # value, its children, height below, expanded size
    while stack:
        frame = stack[-1]
        descended = False
        for child in frame[1]:
            if isinstance(child, Internal):
                raise SerializeError(f"{child.describe()} cannot be part of the {what}")
            child_it = _children(child)
            if child_it is None:
                frame[3] += 1
                continue
            cid = id(child)
            if cid in on_path:
                raise SerializeError(f"the {what} contains a reference cycle (a {type(child).__name__} inside itself)")
            known = known_at.get(cid)
            if known is not None:
                if len(stack) + known[0] > max_depth:
                    raise SerializeError(f"the {what} is nested deeper than {max_depth} levels")
                if known[0] > frame[2]:
                    frame[2] = known[0]
                frame[3] = min(frame[3] + known[1], cap + 1)
                continue
            if len(stack) >= max_depth:
                raise SerializeError(f"the {what} is nested deeper than {max_depth} levels")
            on_path.add(cid)
            stack.append([child, child_it, 0, 1])
            descended = True
            break
        if descended:
            continue
        stack.pop()
        on_path.discard(id(frame[0]))
        if max_nodes is not None and frame[3] > cap:
            raise SerializeError(
                f"the {what} expands to more than {cap} objects when shared references are counted "
                "(hashing, comparing, printing or flattening it would walk every one)"
            )
        height = frame[2] + 1
        known_at[id(frame[0])] = (height, frame[3])
        if stack:
            if height > stack[-1][2]:
                stack[-1][2] = height
            stack[-1][3] = min(stack[-1][3] + frame[3], cap + 1)


class _BoundedRepr(reprlib.Repr):
    """``repr`` for error messages: a few levels and items only, whatever the value's size."""

    def repr1(self, x: Any, level: int) -> str:
        if isinstance(x, Internal):
            return x.describe()
        return super().repr1(x, level)


_REPR = _BoundedRepr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 6, 6, 6
_REPR.maxset = _REPR.maxfrozenset = 6
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 80


def short(value: Any) -> str:
    """``repr(value)`` for an error message: a few levels and items, at most 120 characters."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a repr that fails must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _MAX_MESSAGE_VALUE else text[:_MAX_MESSAGE_VALUE] + "..."


def printable(text: str) -> str:
    """``text`` as is when it is short and printable, else its (truncated) repr."""
    return text if text.isprintable() and len(text) <= _MAX_MESSAGE_VALUE else short(text)


# ------------------------------------------------------------------ the machine
