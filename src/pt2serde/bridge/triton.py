"""The triton kernel wrapper (``triton_kernel_wrapper_functional``) as a named node.

Only programs exported on a GPU with triton contain it. The kernel itself is not
written; the node records the compiled kernel's name (kernel name + cache hash), its
launch grid, which arguments it writes, the warp count and other launch metadata, and
the names and types of its runtime parameters, so an ahead-of-time runtime can find the
compiled binary. Compile-time (``constexpr``) parameters are baked into the binary and
left out. PyTorch reads such nodes back only as "not implemented", and so does pt2serde.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from .. import schema
from ..errors import SerializeError

__all__ = ["triton_node"]

_CONSTEXPR_IN_KEY = re.compile(r"\('constexpr',\s*([^)]+)\)")
_LAUNCH_ATTRS = ("num_cpu_threads", "num_warps", "num_stages", "num_ctas")


def _parse_constexpr(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    for convert in (float, int):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _comparable(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float)) else str(value)


def _kernel_and_entry(node: torch.fx.Node):
    """The JIT kernel behind the node and the compiled cache entry it launched."""
    from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table
    from torch.utils._triton import has_triton

    if not has_triton():
        raise SerializeError("serializing a triton kernel node needs triton installed")
    from triton.runtime.autotuner import Autotuner
    from triton.runtime.jit import JITFunction

    kernel = kernel_side_table.get_kernel(node.kwargs["kernel_idx"])
    autotuned = isinstance(kernel, Autotuner)
    jit = kernel.fn if autotuned else kernel
    if hasattr(jit, "device_caches"):
        caches = list(jit.device_caches.values())
        if len(caches) != 1:
            raise SerializeError(f"kernel {jit.__name__} was compiled for {len(caches)} devices; expected one")
        cache = caches[0][0]
    elif hasattr(jit, "cache"):
        caches = list(jit.cache.values())
        if len(caches) != 1:
            raise SerializeError(f"kernel {jit.__name__} has {len(caches)} caches; expected one")
        cache = caches[0]
    else:
        raise SerializeError(f"no compile cache found for triton kernel {getattr(jit, '__name__', jit)}")
    if len(cache) == 1:
        return jit, next(iter(cache.values()))

    candidates = list(cache.items())
    constexprs = getattr(jit, "constexprs", None) if isinstance(jit, JITFunction) else None
    if constexprs:
        call_kwargs = node.kwargs.get("kwargs", {})
        wanted = [
            _comparable(call_kwargs[jit.arg_names[i]])
            for i in constexprs
            if i < len(jit.arg_names) and jit.arg_names[i] in call_kwargs
        ]
        candidates = [
            (key, entry) for key, entry in candidates
            if (found := _CONSTEXPR_IN_KEY.findall(key)) and [_parse_constexpr(v) for v in found] == wanted
        ]
    if len(candidates) == 1:
        return jit, candidates[0][1]
    if autotuned and candidates:
        for _, entry in candidates:
            for config in kernel.configs:
                if all(getattr(config, a) == getattr(entry.metadata, a)
                       for a in _LAUNCH_ATTRS if hasattr(config, a) and hasattr(entry.metadata, a)):
                    return jit, entry
    raise SerializeError(
        f"cannot tell which compiled variant of triton kernel {jit.__name__} this node launched "
        f"({len(candidates)} candidates)"
    )


def triton_node(enc, node: torch.fx.Node, common: dict) -> schema.Node:
    """The ``schema.Node`` of a ``triton_kernel_wrapper_functional`` call."""
    kernel, entry = _kernel_and_entry(node)
    meta = entry.metadata
    val = node.meta.get("val")
    if not isinstance(val, dict):
        raise SerializeError(f"triton kernel node {node.name} must produce a dict of outputs")
    call_kwargs = node.kwargs["kwargs"]
    if not isinstance(call_kwargs, dict):
        raise SerializeError(f"triton kernel node {node.name}: kwargs must be a dict")
    constexpr_names = {p.name for p in kernel.params if p.is_constexpr}

    inputs: list[schema.NamedArgument] = []
    output_indices: list[int] = []
    seen_constexpr = False
    for name, value in call_kwargs.items():
        if name in constexpr_names:
            seen_constexpr = True
            continue  # compiled into the kernel
        if seen_constexpr:
            raise SerializeError(f"triton kernel {kernel.__name__}: runtime argument {name!r} follows a constexpr")
        if name in val:
            output_indices.append(len(inputs))
        inputs.append(schema.NamedArgument(
            name=name, arg=enc.serialize_input(value), kind=schema.ArgumentKind.POSITIONAL,
        ))

    grid = node.kwargs["grid"]
    if not isinstance(grid, list):
        raise SerializeError(f"triton kernel node {node.name}: grid must be a list")
    launch: dict[str, Any] = {
        "name": f"{kernel.fn.__name__}_{meta.hash}",
        "grid": grid[0],
        "output_indices": output_indices,
        "num_warps": meta.num_warps,
    }
    if hasattr(meta, "num_cpu_threads"):
        launch["num_cpu_threads"] = meta.num_cpu_threads
    if hasattr(meta, "shared"):
        launch["shared_memory_bytes"] = int(meta.shared) if isinstance(meta.shared, bool) else meta.shared
    for attr in ("tile_width", "tile_height", "base_pe"):
        if hasattr(meta, attr):
            launch[attr] = getattr(meta, attr)
    runtime = [p for p in kernel.params if not p.is_constexpr]
    launch["kernel_param_names"] = [p.name for p in runtime]
    signature = getattr(getattr(entry, "src", None), "signature", None)
    launch["kernel_param_types"] = [
        str(signature.get(p.name, p.annotation)) if signature is not None else str(p.annotation)
        for p in runtime
    ]
    inputs.extend(
        schema.NamedArgument(name=k, arg=enc.serialize_input(v), kind=schema.ArgumentKind.KEYWORD)
        for k, v in launch.items()
    )
    return schema.Node(
        inputs=inputs,
        outputs=enc._hop_outputs(node),
        is_hop_single_tensor_return=isinstance(val, torch.Tensor),
        **common,
    )
