"""Safe resolution of call-target names read from a document.

A name resolves only to:

* an ATen or custom operator overload, ``torch.ops.<namespace>.<op>.<overload>``;
* a registered higher-order operator, ``torch.ops.higher_order.<name>``;
* one of the known symbolic functions (``_operator.mul``, ``math.trunc``,
  ``torch.sym_max``, ...) or pre-dispatch helpers (vmap/jvp nesting, grad mode);
* an extension op, ``#<namespace>:<op>``, through a handler the user registered.

Nothing else: no attribute walks over arbitrary modules, no imports, no callables named
by the file. Unknown names raise :class:`SerializeError` saying what to do.
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any

import torch

from ..errors import SerializeError
from ..format.names import ATEN_DUNDER_OPS
from ..extensions import extension_handler_by_namespace
from .graph_save import SYM_OPS, operator_name

__all__ = ["resolve_target", "resolve_meta_function", "KNOWN_FUNCTIONS"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _known_functions() -> dict[str, Any]:
    import torch._functorch.predispatch as predispatch

    fns: list[Any] = list(SYM_OPS)
    fns += [
        predispatch._add_batch_dim, predispatch._remove_batch_dim,
        predispatch._vmap_increment_nesting, predispatch._vmap_decrement_nesting,
        predispatch._jvp_increment_nesting, predispatch._jvp_decrement_nesting,
        predispatch._enter_dual_level, predispatch._exit_dual_level,
        predispatch._make_dual, predispatch._unpack_dual, predispatch._unwrap_for_grad,
        predispatch.lazy_load_decompositions,
        torch._C._set_grad_enabled,
        torch.amp.autocast_mode._enter_autocast, torch.amp.autocast_mode._exit_autocast,
    ]
    return {operator_name(fn): fn for fn in fns}


KNOWN_FUNCTIONS: dict[str, Any] = _known_functions()


def _name_part(part: str) -> bool:
    """A namespace, op or overload name that may be looked up: an identifier, not a dunder."""
    return bool(_IDENT.match(part)) and not part.startswith("__")


def _registered(ns: str, op: str, overload: str | None) -> bool:
    """``ns::op`` (with ``overload``, or any overload when None) is in the dispatcher's registry.

    Asked before any ``getattr(torch.ops, ...)``: ``torch.ops.__getattr__`` creates and keeps a
    namespace object for *any* name it is asked (a process-global side effect, even when the
    load then fails), and an op packet for any op name."""
    aten_dunder = ns == "aten" and op in ATEN_DUNDER_OPS  # torch.ops.aten.__and__.Tensor (real graphs)
    if not (_name_part(ns) and (_name_part(op) or aten_dunder) and (overload is None or _name_part(overload))):
        return False
    qualified = f"{ns}::{op}"
    if overload is None:
        return bool(torch._C._jit_get_schemas_for_operator(qualified))
    try:
        torch._C._dispatch_find_schema_or_throw(qualified, "" if overload == "default" else overload)
    except RuntimeError:
        return False
    return True


def _op_overload(name: str) -> Any:
    parts = name.split(".")
    # torch.ops.<ns>.<op>.<overload>
    if len(parts) != 5 or not _registered(*parts[2:]):
        return None
    _, _, ns, op, overload = parts
    try:
        packet = getattr(getattr(torch.ops, ns), op)
        target = getattr(packet, overload)
    except (AttributeError, RuntimeError):
        return None
    return target if isinstance(target, torch._ops.OpOverload) else None


def _higher_order(name: str) -> Any:
    import torch._higher_order_ops  # noqa: F401  (registers every HOP)

    return torch._ops._higher_order_ops.get(name)


def resolve_target(name: str) -> Any:
    """The callable behind a serialized call-target name (see the module docstring)."""
    if not isinstance(name, str) or not name:
        raise SerializeError(f"invalid call target {name!r}")
    if name in KNOWN_FUNCTIONS:
        return KNOWN_FUNCTIONS[name]
    if name.startswith("torch.ops.higher_order."):
        hop = _higher_order(name[len("torch.ops.higher_order."):])
        if hop is not None:
            return hop
        raise SerializeError(f"Unknown higher-order operator {name!r}")
    if name.startswith("torch.ops."):
        op = _op_overload(name)
        if op is not None:
            return op
        raise SerializeError(
            f"We failed to resolve {name} to an operator. If it is a custom op or custom triton op, "
            "it is usually not registered yet: import the module that registers it before loading."
        )
    if name.startswith("#"):
        ns, sep, op_name = name[1:].partition(":")
        handler = extension_handler_by_namespace(ns) if sep else None
        if handler is None:
            raise SerializeError(
                f"Extension op {name!r}: no handler is registered for namespace {ns!r} "
                "(call pt2serde.register_extension before loading)"
            )
        return handler.from_op_name(op_name)
    raise SerializeError(
        f"Call target {name!r} is not an operator or a known symbolic function; refusing to resolve it"
    )


_META_MODULES = {"_operator": operator, "math": math}


def resolve_meta_function(name: str) -> Any:
    """A ``source_fn_stack`` entry: best effort, never importing; unknown names stay strings."""
    if name in KNOWN_FUNCTIONS:
        return KNOWN_FUNCTIONS[name]
    module, _, attr = name.partition(".")
    if module in _META_MODULES and _IDENT.match(attr):
        fn = getattr(_META_MODULES[module], attr, None)  # e.g. _operator.iadd: a builtin, never called here
        return fn if callable(fn) else name
    if name.startswith("torch.ops."):
        parts = name.split(".")
        if len(parts) == 4 and parts[2] != "higher_order":
            # an operator packet (the op called without naming an overload)
            if not _registered(parts[2], parts[3], None):
                return name
            try:
                packet = getattr(getattr(torch.ops, parts[2]), parts[3])
            except (AttributeError, RuntimeError):
                return name
            return packet if isinstance(packet, torch._ops.OpOverloadPacket) else name
        try:
            return resolve_target(name)
        except SerializeError:
            return name
    if name.startswith("torch.") and all(_IDENT.match(p) for p in name.split(".")):
        target: Any = torch
        for part in name.split(".")[1:]:
            # only already-present attributes of torch's own modules
            target = vars(target).get(part) if hasattr(target, "__dict__") else None
            if target is None:
                return name
        return target
    return name
