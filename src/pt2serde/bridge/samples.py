"""Writing the sample-inputs record (``data/sample_inputs/<model>.pt``) in torch.save format.

``torch.export.load`` reads this record with ``torch.load``, so it must stay a torch.save
file. Real tensors are written by ``torch.save`` itself. Fake tensors (programs exported
under a ``FakeTensorMode``) are written the way PyTorch writes them: a call to
``torch._export.serde.serialize._reconstruct_fake_tensor(meta_json, is_parameter)``. That
global is emitted by name; pt2serde never imports PyTorch's serializer to do it.
Reading goes through :mod:`pt2serde.bridge.torchsave`, which never runs code from the file.
"""

from __future__ import annotations

import io
import json
import pickle
import warnings
import types
from typing import Any

import torch

from ..format import codec
from .tensors import is_fake, tensor_meta_to_wire

__all__ = ["dumps_sample_inputs"]

_FAKE_GLOBAL = b"torch._export.serde.serialize\n_reconstruct_fake_tensor\n"


def _fake_tensor_marker(*args: Any) -> None:  # pragma: no cover - only pickled by name
    raise RuntimeError("placeholder for PyTorch's fake-tensor rebuild function")


class _Pickler(pickle._Pickler):  # the pure-Python pickler lets us write one global by name
    # Functions are pickled through the class's dispatch table, which holds the base
    # class's save_global: route them through the override below instead.
    dispatch = pickle._Pickler.dispatch.copy()

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor) and is_fake(obj):
            meta = json.dumps(codec.to_dict(tensor_meta_to_wire(obj))).encode("utf-8")
            return _fake_tensor_marker, (meta, isinstance(obj, torch.nn.Parameter))
        return NotImplemented

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is _fake_tensor_marker:
            self.write(pickle.GLOBAL + _FAKE_GLOBAL)
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch[types.FunctionType] = save_global


class _PickleModule:
    """What ``torch.save(pickle_module=...)`` needs: a ``Pickler`` class."""

    Pickler = _Pickler


def _has_fake(value: Any) -> bool:
    return any(isinstance(x, torch.Tensor) and is_fake(x) for x in torch.utils._pytree.tree_leaves(value))


def dumps_sample_inputs(example_inputs: Any, pickle_protocol: int = 2) -> bytes:
    """torch.save bytes of ``(args, kwargs)`` (written with ``pickle_protocol``); empty bytes
    when there are none.

    The record is read back with pt2serde's own safe reader before it is kept: example
    inputs holding objects that reader refuses (instances of user classes, which only
    unpickling could rebuild) are left out with a warning, so pt2serde never writes an
    archive it would then refuse to load.
    """
    if example_inputs is None:
        return b""
    buf = io.BytesIO()
    if _has_fake(example_inputs):
        torch.save(example_inputs, buf, pickle_module=_PickleModule, pickle_protocol=pickle_protocol)
    else:
        torch.save(example_inputs, buf, pickle_protocol=pickle_protocol)
    data = buf.getvalue()
    from ..errors import SerializeError
    from .torchsave import load_torch_save

    try:
        load_torch_save(data, what="sample inputs", fake_tensor=lambda meta: torch.empty(0))
    except SerializeError as e:
        warnings.warn(f"example inputs are not saved: reading them back would need unpickling ({e})",
                      stacklevel=3)
        return b""
    return data
