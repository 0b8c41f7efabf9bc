"""Programs whose mutations ``module()`` writes back with ``copy_`` (which casts and broadcasts),
and a ``while_loop`` whose output mentions an unbacked symbol no node binds: real exports that
a stricter rule refused (found by a red-team pass), loaded as ``torch.export.load`` loads them.

After ``run_decompositions()`` a buffer update is written as the value ``copy_`` reads:
``buf.fill_(x.sum())`` gives a 0-d value for a [2, 3] buffer, ``buf.copy_(x)`` a float32 value
for a float64 buffer or a [3] value for a [4, 3] one. ``load`` and ``validate`` refuse only a
value whose sizes cannot broadcast to the buffer's (``format.check._may_broadcast``).
"""

from __future__ import annotations

import io

import pytest
import torch

import pt2serde
from pt2serde.format.archive import ArchiveReader
from pt2serde.format.check import check_archive


class Fill(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("buf", torch.zeros(2, 3))

    def forward(self, x):
        self.buf.fill_(x.sum())
        return x + 1


class CopyIntoFloat64(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("buf", torch.zeros(2, 3, dtype=torch.float64))

    def forward(self, x):
        self.buf.copy_(x)
        return x + 1


class CopyBroadcast(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("buf", torch.zeros(4, 3))

    def forward(self, x):
        self.buf.copy_(x)
        return self.buf * 2


class ReassignDtype(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("buf", torch.zeros(3, dtype=torch.int32))

    def forward(self, x):
        self.buf = self.buf + 0.5
        return x + self.buf


CASES = {"fill": (Fill, (3,)), "float64": (CopyIntoFloat64, (2, 3)), "broadcast": (CopyBroadcast, (3,)),
         "dtype": (ReassignDtype, (3,))}


def _saved(ep: torch.export.ExportedProgram, writer: str) -> bytes:
    buf = io.BytesIO()
    (pt2serde.save if writer == "pt2serde" else torch.export.save)(ep, buf)
    return buf.getvalue()


def _errors(data: bytes) -> list[str]:
    return [p.message for p in check_archive(ArchiveReader(data)) if p.level == "error"]


@pytest.mark.parametrize("writer", ["pt2serde", "torch"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_decomposed_buffer_update_loads_and_writes_back(case: str, writer: str) -> None:
    cls, shape = CASES[case]
    x = torch.arange(float(torch.Size(shape).numel())).reshape(shape)
    ep = torch.export.export(cls(), (torch.ones(shape),), strict=False).run_decompositions()
    data = _saved(ep, writer)
    assert _errors(data) == []
    expected, got = ep.module(), pt2serde.load(io.BytesIO(data)).module()
    assert torch.equal(got(x), expected(x))
    assert got.buf.dtype == expected.buf.dtype and torch.equal(got.buf, expected.buf)


def _sizes(*values) -> list:
    from pt2serde import schema

    return [schema.SymInt.create(as_int=v) if isinstance(v, int) else
            schema.SymInt.create(as_expr=schema.SymExpr(expr_str=v)) for v in values]


@pytest.mark.parametrize("src, dst, fits", [
    ((), (2, 3), True), ((3,), (4, 3), True), ((1,), (2, 3), True), ((2, 1), (2, 3), True),
    ("s0", ("s0", 3), True),  # symbolic: cannot be proven wrong
    ((1, 3), (3,), False), ((2, 3), (3,), False), ((3,), (4,), False), ((4, 3), (3, 3), False),
])
def test_which_values_may_be_written_back(src, dst, fits) -> None:
    from pt2serde.format.check import _may_broadcast

    src, dst = (src,) if isinstance(src, str) else src, dst
    assert _may_broadcast(_sizes(*src), _sizes(*dst)) is fits


def test_while_loop_output_offset_with_an_unbound_unbacked_symbol_loads() -> None:
    """Export writes the storage offset of a while_loop output as ``u0 - 1`` and gives ``u0`` a
    range, while no node binds it; torch.export.load warns and loads it."""
    class Loop(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3))

        def forward(self, x):
            return torch._higher_order_ops.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x * self.w),
                                                      (torch.tensor(0), x))

    ep = torch.export.export(Loop(), (torch.ones(3),), strict=False)
    for writer in ("pt2serde", "torch"):
        data = _saved(ep, writer)
        assert _errors(data) == []
        loaded = pt2serde.load(io.BytesIO(data))
        x = torch.arange(3.0)
        for got, want in zip(loaded.module()(x), ep.module()(x)):
            assert torch.equal(got, want)
        loaded.run_decompositions()
