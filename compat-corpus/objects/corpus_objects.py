"""The opaque class and custom operator of the object-constant archives in this folder.

Import it before loading them, as a user imports the library that registers their classes:
it registers :class:`Offset` as a reference-type opaque type and ``pt2corpus_obj::add_offset``.
"""

from __future__ import annotations

import torch
import torch._opaque_base
from torch._library.opaque_object import get_opaque_type_name, is_opaque_type, register_opaque_type


class Offset(torch._opaque_base.OpaqueBase):
    """A reference-type opaque object with plain state of several kinds."""

    def __init__(self, offset: float, name: str = "offset", dims: tuple = (0, 1)) -> None:
        self.offset, self.name, self.dims = offset, name, dims
        self.table = {"scale": [1, 2.5, None, True]}


if not is_opaque_type(Offset):
    register_opaque_type(Offset, typ="reference")

_LIB = torch.library.Library("pt2corpus_obj", "FRAGMENT")
_LIB.define(f"add_offset(Tensor x, {get_opaque_type_name(Offset)} o) -> Tensor")
torch.library.impl("pt2corpus_obj::add_offset", "CompositeExplicitAutograd", lib=_LIB)(lambda x, o: x + o.offset)
torch.library.register_fake("pt2corpus_obj::add_offset", lib=_LIB)(lambda x, o: torch.empty_like(x))


class WithOffset(torch.nn.Module):
    """A linear layer whose output is shifted by an opaque constant's offset."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.offset = Offset(2.5)

    def forward(self, x):
        return torch.ops.pt2corpus_obj.add_offset(self.linear(x), self.offset)
