"""Pytree treespecs (``in_spec`` / ``out_spec`` of the module call graph) as JSON text.

Writing uses pytree's own protocol-1 dump. Reading is our own: the text's shape is checked
first by :func:`pt2serde.format.treespec_text.check` (torch-free, the rule validate applies too:
JSON, node shape, depth, defaultdict factories among plain containers); then only node types
already registered with pytree are built, and enum classes are looked up among modules that
are *already imported* (never importing a module named by the file).
"""

from __future__ import annotations

import builtins
import collections
import json
import sys
from collections.abc import Mapping
from enum import Enum
from typing import Any

import torch.utils._pytree as pytree

from .. import schema

from ..format import treespec_text
from ..errors import SerializeError

__all__ = ["dumps", "loads"]

#: the defaultdict factories treespec_text allows, as objects
_SAFE_FACTORIES = {(m, n): getattr({"builtins": builtins, "collections": collections}[m], n)
                   for m, n in treespec_text.SAFE_FACTORIES}


def dumps(spec: pytree.TreeSpec, namedtuple_fields: dict[str, schema.NamedTupleDef]) -> str:
    """The JSON text of ``spec``; records the field names of every namedtuple type it uses."""
    _collect_namedtuple_fields(spec, namedtuple_fields)
    try:
        return pytree.treespec_dumps(spec, schema.TREESPEC_VERSION)
    except (NotImplementedError, TypeError, ValueError, KeyError) as e:
        raise SerializeError(f"cannot write the pytree structure {spec}: {e}") from None


def _collect_namedtuple_fields(spec: pytree.TreeSpec, out: dict[str, schema.NamedTupleDef]) -> None:
    stack = [spec]
    while stack:
        ts = stack.pop()
        if ts.type is None:
            continue
        if ts.type is pytree.namedtuple or pytree.is_namedtuple_class(ts.type):
            cls = ts.context
            node_def = pytree.SUPPORTED_SERIALIZED_TYPES.get(cls)
            name = getattr(node_def, "serialized_type_name", pytree.NO_SERIALIZED_TYPE_NAME_FOUND)
            if name == pytree.NO_SERIALIZED_TYPE_NAME_FOUND:
                raise SerializeError(
                    f"namedtuple {cls.__module__}.{cls.__qualname__} has no serialized type name: register it "
                    f"with torch.utils._pytree._register_namedtuple({cls.__qualname__}, "
                    f'serialized_type_name="{cls.__module__}.{cls.__qualname__}") before exporting'
                )
            fields = list(cls._fields)
            known = out.get(name)
            if known is None:
                out[name] = schema.NamedTupleDef(field_names=fields)
            elif known.field_names != fields:
                raise SerializeError(
                    f"The given TreeSpec's namedtuple type {cls} was found to have field names "
                    f"{tuple(fields)} but somehow previously was found to have field names {tuple(known.field_names)}."
                )
        stack.extend(reversed(ts.children()))


# ------------------------------------------------------------------- reading


def _enum_hook(obj: dict) -> Any:
    if obj.get("__enum__") is not True:
        return obj
    fqn, name = obj.get("fqn"), obj.get("name")
    if not isinstance(fqn, str) or not isinstance(name, str):
        raise SerializeError("malformed enum key in treespec context")
    module_name, _, qualname = fqn.partition(":")
    target: Any = sys.modules.get(module_name)
    if target is None:
        raise SerializeError(
            f"treespec names enum {fqn!r} whose module is not imported; import it before loading"
        )
    for part in qualname.split("."):
        # vars(), not getattr(): a module's __getattr__ may import a submodule on first access
        # (torch imports torch.onnx, torch._inductor... that way), a class attribute may be a descriptor
        namespace = getattr(target, "__dict__", None)
        target = namespace.get(part) if isinstance(namespace, Mapping) else None
    if not (isinstance(target, type) and issubclass(target, Enum)) or name not in target.__members__:
        raise SerializeError(f"treespec names {fqn}.{name}, which is not an enum member")
    return target[name]


def _defaultdict_context(ctx: dict) -> list:
    """The factory and keys of a defaultdict context (its shape and factory already checked)."""
    return [_SAFE_FACTORIES[(ctx["default_factory_module"], ctx["default_factory_name"])], ctx["dict_context"]]


def _node(data: dict) -> pytree.TreeSpec:
    """A node whose shape :func:`treespec_text.check` accepted (its depth is bounded there)."""
    type_name, context, children = data["type"], data["context"], data["children_spec"]
    if type_name is None:
        return pytree.treespec_leaf()
    typ = pytree.SERIALIZED_TYPE_TO_PYTHON_TYPE.get(type_name)
    if typ is None:
        raise SerializeError(f"treespec uses the pytree type {type_name!r}, which is not registered")
    node_def = pytree.SUPPORTED_SERIALIZED_TYPES[typ]
    try:
        if typ is pytree.defaultdict:
            ctx = _defaultdict_context(context)
        elif node_def.from_dumpable_context is not None:
            ctx = node_def.from_dumpable_context(context)  # registered by torch or the user, not the file
        else:
            if not isinstance(context, str):
                raise SerializeError(f"treespec context of {type_name} must be JSON text")
            ctx = json.loads(context, object_hook=_enum_hook)  # strict JSON: treespec_text checked it
    except SerializeError:
        raise
    except (ValueError, TypeError, KeyError, AssertionError, NotImplementedError, RecursionError) as e:
        raise SerializeError(f"invalid treespec context for {type_name}: {e}") from None
    return pytree.TreeSpec(typ, ctx, [_node(c) for c in children])


def loads(text: str) -> pytree.TreeSpec:
    """Rebuild a treespec from its JSON text without importing or running anything it names."""
    _, body = treespec_text.check(text)
    try:
        return _node(body)
    except (ValueError, TypeError) as e:  # e.g. a TreeSpec whose children do not fit its type
        raise SerializeError(f"invalid treespec: {e}") from None
    except RecursionError:
        raise SerializeError("treespec is nested too deeply") from None
