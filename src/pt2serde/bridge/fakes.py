"""FakeTensors for a loaded program's values, made as torch's constructor makes them, cheaper.

Every node of a loaded graph gets a ``FakeTensor`` in ``node.meta["val"]``: several hundred to
thousands per program. ``FakeTensor(fake_mode, elem, device)`` costs ~10 us, most of it Python
in ``FakeTensor.__new__`` (argument normalization, the device check, ~20 attribute sets through
memo descriptors), against ~2 us for what it builds: ``Tensor._make_subclass`` over the meta
``elem``, the data-pointer guard, and an instance dictionary that holds the mode, the device and
empty memos, the same for every tensor of one mode and device.

:class:`FakeMaker` builds the first tensor of each device with torch's constructor and keeps its
instance dictionary as the template of the others. It trusts the template only after a probe:
two more tensors (other dtype, shape, ``requires_grad``), one from the constructor and one from
the fast path, must agree in type, instance dictionary (every key, every value identical),
dispatch keys, device, dtype, shape and ``requires_grad``; and the constructor's two tensors
must have equal dictionaries (nothing in them depends on ``elem``). Where the probe fails (a
torch release whose constructor does more), while torch is exporting (``FakeTensor.__init__``
then records every fake tensor) and with ``FakeTensorConfig.debug`` (a traceback per tensor), the
constructor makes every tensor. The data-pointer guard follows the mode's
``_allow_unsafe_data_ptr_access`` at each call, as the constructor's does.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch

__all__ = ["FakeMaker"]

log = logging.getLogger(__name__)


class FakeMaker:
    """``make(elem, device, requires_grad)``: a ``FakeTensor`` of ``fake_mode`` over the meta
    tensor ``elem``, on ``device`` (a normalized ``torch.device``, as ``tables.device_from_wire``
    gives), the same object torch's ``FakeTensor(fake_mode, elem, device)`` followed by
    ``requires_grad_(requires_grad)`` would be."""

    __slots__ = ("fake_mode", "_templates", "_type", "_subclass", "_guards", "_exporting", "_config")

    def __init__(self, fake_mode) -> None:
        from torch._subclasses.fake_tensor import FakeTensor, FakeTensorConfig

        self.fake_mode = fake_mode
        #: device -> the instance dictionary every FakeTensor of that device starts with, or
        #: None where the probe failed (the constructor makes them)
        self._templates: dict[torch.device, dict | None] = {}
        self._type = FakeTensor
        self._subclass = torch.Tensor._make_subclass
        #: what the constructor marks a tensor with, by the mode's ``_allow_unsafe_data_ptr_access``
        #: (True by default: a deprecation warning on data-pointer access; else an error)
        self._guards = {True: torch._C._set_warn_deprecated_on_mutable_data_ptr,
                        False: torch._C._set_throw_on_mutable_data_ptr}
        self._exporting: Callable[[], bool] = torch.compiler.is_exporting
        self._config = FakeTensorConfig

    def __repr__(self) -> str:
        fast = sorted(str(d) for d, t in self._templates.items() if t is not None)
        return f"<FakeMaker fast for {fast or 'no device yet'}>"

    def make(self, elem: torch.Tensor, device: torch.device, requires_grad: bool):
        template = self._templates.get(device)
        if template is not None and not self._exporting() and not self._config.debug:
            return self._fast(elem, device, requires_grad, template)
        fake = self._construct(elem, device, requires_grad)
        if device not in self._templates:
            self._templates[device] = self._probe(fake, device)
        return fake

    def _fast(self, elem: torch.Tensor, device: torch.device, requires_grad: bool, template: dict):
        fake = self._subclass(self._type, elem, requires_grad, dispatch_device=True, device_for_backend_keys=device)
        self._guards[bool(self.fake_mode._allow_unsafe_data_ptr_access)](fake)
        fake.__dict__.update(template)
        return fake

    def _construct(self, elem: torch.Tensor, device: torch.device, requires_grad: bool):
        fake = self._type(self.fake_mode, elem, device)
        if requires_grad:
            fake.requires_grad_(True)
        return fake

    def _probe(self, first, device: torch.device) -> dict | None:
        """The instance dictionary of ``first`` (made by the constructor) if the fast path makes
        what the constructor does on this torch; else None."""
        if self._exporting() or self._config.debug:
            return None
        template = dict(first.__dict__)
        probe = torch.empty((2, 3), dtype=torch.float16, device="meta")
        try:
            slow = self._construct(probe, device, True)
            fast = self._fast(probe, device, True, template)
        except Exception as e:  # noqa: BLE001 - a torch whose constructor wants more: use it
            log.debug("FakeTensors on %s: the probe failed (%s); using the constructor", device, e)
            return None
        same = (
            type(fast) is type(slow)
            and _same_state(slow.__dict__, template)  # nothing depends on elem or requires_grad
            and _same_state(fast.__dict__, slow.__dict__)
            and torch._C._dispatch_keys(fast) == torch._C._dispatch_keys(slow)
            and fast.device == slow.device == device
            and fast.dtype == slow.dtype and fast.shape == slow.shape
            and fast.requires_grad == slow.requires_grad
            and fast.is_leaf == slow.is_leaf
        )
        if not same:
            log.debug("FakeTensors on %s: this torch's constructor does more than the fast path; using it", device)
            return None
        return template


def _same_state(a: dict, b: dict) -> bool:
    """Same keys, and every value the same object (devices: equal; the constructor makes a new
    ``torch.device`` per tensor, and devices are immutable)."""
    return a.keys() == b.keys() and all(
        a[k] is b[k] or (type(a[k]) is torch.device and type(b[k]) is torch.device and a[k] == b[k]) for k in a)
