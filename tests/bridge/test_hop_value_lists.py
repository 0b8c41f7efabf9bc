"""Higher-order ops over lists that hold symbolic values, and a program pt2serde cannot write.

torch's serializer writes a higher-order op's list of values as ``as_tensors`` even where it
holds a SymInt next to tensors (a ``while_loop`` carrying ``x.shape[0]``): ``load`` read such
files, ``validate`` refused them ("used as a tensor but defined as a SymInt"). Both accept them
now, only for higher-order ops. A cond inside a non-strict autocast region keeps the region's
context object (``_enter_autocast``) as a value no document holds: ``torch.export.save``
refuses the program, and so does ``pt2serde.save`` now, before writing anything (it wrote a
file no reader could load). Found by a red-team pass.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch._higher_order_ops.while_loop import while_loop

import pt2serde
from pt2serde.format.archive import ArchiveReader
from pt2serde.format.check import check_archive


class CarriesASize(torch.nn.Module):
    def forward(self, x):
        return while_loop(lambda i, x: i < 10, lambda i, x: (i + 1, x * 2), (x.shape[0], x))


@pytest.mark.parametrize("writer", ["pt2serde", "torch"])
def test_while_loop_carrying_a_symint_loads_and_validates(writer: str) -> None:
    x = torch.randn(8, 3)
    ep = torch.export.export(CarriesASize(), (x,), dynamic_shapes={"x": {0: torch.export.Dim("n")}})
    buf = io.BytesIO()
    (pt2serde.save if writer == "pt2serde" else torch.export.save)(ep, buf)
    assert [p.message for p in check_archive(ArchiveReader(buf.getvalue())) if p.level == "error"] == []
    loaded = pt2serde.load(io.BytesIO(buf.getvalue()))
    for a in (x, torch.randn(3, 3)):
        want, got = ep.module()(a), loaded.module()(a)
        assert want[0] == got[0] and torch.equal(want[1], got[1])


def test_a_value_no_document_holds_is_refused_by_save(tmp_path) -> None:
    class AutocastCond(torch.nn.Module):
        def forward(self, x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = torch.cond(x.shape[0] > 4, lambda x: x.mm(x.t()), lambda x: x.mm(x.t()) * 2, (x,))
            return y.float()

    ep = torch.export.export(AutocastCond(), (torch.randn(8, 3),),
                             dynamic_shapes={"x": {0: torch.export.Dim("n", min=2)}}, strict=False)
    if not any(n.name == "_enter_autocast" for n in ep.graph.nodes):
        pytest.fail("export no longer keeps the autocast context as a node: this test needs another program")
    path = tmp_path / "model.pt2"
    with pytest.raises(pt2serde.SerializeError, match=r"cannot save a use of `_enter_autocast`"):
        pt2serde.save(ep, path)
    assert not path.exists()
