"""Data-dependent splits load: ``torch.split(x, lengths.tolist())`` into 64 pieces, and
``narrow`` into 24 slices at running offsets. Piece ``k`` starts at ``u0 + ... + u(k-1)``,
so such a program holds sums of up to N symbols, N of them (17k work units for N = 64),
and ``narrow`` asserts ``pos + l <= size`` for each slice. The expression budget refused both
from about 24 pieces, pricing a sum's terms like those of ``Min``/``Max`` chains (0.57 ms a
unit at the cap) although sympy and torch take 0.016-0.037 ms a unit on them: linear sums are
now charged their units / 16 (at least 2), order comparisons of them 6 + units / 4
(``expr_rules.LINEAR_DIVISOR`` ...; the hostile documents at those rates are in
``tests/hostile/cases_expressions.py``)."""

from __future__ import annotations

import pytest
import torch

import pt2serde
import pt2serde.cli
from pt2serde.format import check, expr

from test_many_experts import _charged


class _Split(torch.nn.Module):
    def forward(self, x, lengths):
        parts = torch.split(x, lengths.tolist())
        return torch.cat([p * (i + 1) for i, p in enumerate(parts)])


class _Narrow(torch.nn.Module):
    def forward(self, x, lengths):
        pos, out = 0, []
        for i, n in enumerate(lengths.tolist()):
            torch._check(n >= 0)
            out.append(x.narrow(0, pos, n).sum(0) * (i + 1))
            pos = pos + n
        return torch.stack(out)


@pytest.mark.parametrize("saver", ["pt2serde", "torch"])
@pytest.mark.parametrize("module, pieces", [(_Split(), 64), (_Narrow(), 24)], ids=["split", "narrow"])
def test_data_dependent_splits_load(module, pieces, saver, tmp_path):
    x, lengths = torch.randn(4 * pieces, 3), torch.full((pieces,), 4)
    ep = torch.export.export(module, (x, lengths), strict=False)
    path = tmp_path / "split.pt2"
    doc, budget = _charged(ep, saver, path)
    texts = [t for _, t in check.document_expressions(doc.graph_module.graph)]
    assert sum(expr.work(t) for t in texts) > 2 * expr.MAX_DOCUMENT_WORK  # what the old prices refused
    assert max(len(expr.symbols(expr.parse(t))) for t in texts) >= pieces - 1  # sums of every length

    loaded = pt2serde.load(str(path))
    other = torch.tensor([2, 6] * (pieces // 2))  # other lengths, the same total
    for n in (lengths, other):
        assert torch.equal(loaded.module()(x, n), module(x, n))
        assert torch.equal(loaded.module()(x, n), torch.export.load(str(path)).module()(x, n))
    assert pt2serde.cli.main(["validate", str(path)]) == 0

