"""Data-dependent programs load: an MoE layer routing tokens to 80
experts makes, for each expert, ``u<i>`` (its token count, from ``nonzero``) and the runtime
asserts ``u<i> >= 0`` and ``u<i> <= 64``: 240 distinct expressions, about 2300 work units.
The expression budget (1500 units) refused such a program until plain expressions (symbols and
their sums, products and comparisons) were charged to an allowance of 2 per graph node
(:func:`pt2serde.format.check.expression_budget`); both ``load`` and ``validate`` use it.
Asserted equalities between sizes (``torch._check(b == 2 * a)``) load too, charged as torch
substitutes them (``ExprBudget.assert_condition``)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import torch

import pt2serde
import pt2serde.cli
from pt2serde.format import check, expr

EXPERTS = 80


class _Router(torch.nn.Module):
    """Each token goes to its arg-max expert; each expert scales its tokens by its own weight."""

    def __init__(self) -> None:
        super().__init__()
        self.route = torch.nn.Linear(8, EXPERTS)
        self.scale = torch.nn.Parameter(torch.randn(EXPERTS, 8))

    def forward(self, x):
        idx = self.route(x).argmax(-1)
        out = torch.zeros_like(x)
        for e in range(EXPERTS):
            sel = (idx == e).nonzero().squeeze(-1)
            out = out.index_add(0, sel, x[sel] * self.scale[e])
        return out


@pytest.fixture(scope="module")
def program():
    torch.manual_seed(0)
    module = _Router().eval()
    x = torch.randn(64, 8)
    return module, torch.export.export(module, (x,), strict=False)


def _document(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(z.read(next(n for n in z.namelist() if n.endswith("models/model.json"))))


def _charged(ep, saver: str, path) -> tuple:
    """Save ``ep`` with ``saver`` to ``path``; the decoded document (no error) and its budget
    after what load charges: the asserted conditions, then every expression."""
    (pt2serde.save if saver == "pt2serde" else torch.export.save)(ep, str(path))
    doc, problems = check.check_document(_document(path.read_bytes()))
    assert [p for p in problems if p.level == "error"] == []
    budget = check.expression_budget(doc)
    for where, text in check.assert_conditions(doc.graph_module.graph):
        budget.assert_condition(text, where)
    for where, text in check.document_expressions(doc.graph_module.graph):
        budget.parse(text, where)
    return doc, budget


@pytest.mark.parametrize("saver", ["pt2serde", "torch"])
def test_many_experts_load(program, saver, tmp_path):
    module, ep = program
    path = tmp_path / "moe.pt2"
    doc, budget = _charged(ep, saver, path)
    # the plain expressions: past the units on their own, all within the allowance
    assert budget.plain_used >= 3 * EXPERTS - 3 and budget.used < 100
    assert sum(expr.work(t) for _, t in check.document_expressions(doc.graph_module.graph)) > expr.MAX_DOCUMENT_WORK

    loaded = pt2serde.load(str(path))
    x = torch.randn(64, 8)  # other tokens: another routing, other token counts per expert
    with torch.no_grad():
        assert torch.equal(loaded.module()(x), module(x))
        assert torch.equal(loaded.module()(x), torch.export.load(str(path)).module()(x))
    assert pt2serde.cli.main(["validate", str(path)]) == 0


class _Lengths(torch.nn.Module):
    """Sizes read from a tensor, two of them asserted equal to expressions of the others: export
    writes ``_assert_scalar`` nodes on ``Eq(u1, 2*u0)`` and ``Eq(u2, u0*u1)``, which torch's
    ShapeEnv may turn into replacements; the budget charges every expression with the nonlinear
    one written out."""

    def forward(self, x, n):
        a, b, c = n.tolist()
        torch._check_is_size(a)
        torch._check_is_size(b)
        torch._check_is_size(c)
        torch._check(b == a * 2)
        torch._check(c == a * b)
        return x[:a].sum() + x[:b].sum() * 2 + x[:c].sum() * 3


@pytest.mark.parametrize("saver", ["pt2serde", "torch"])
def test_asserted_equalities_load(saver, tmp_path):
    module = _Lengths()
    ep = torch.export.export(module, (torch.randn(64), torch.tensor([3, 6, 18])), strict=False)
    path = tmp_path / "lengths.pt2"
    _, budget = _charged(ep, saver, path)
    assert budget.replaced.keys() == {"u0", "u1", "u2"}  # what u2 == u0*u1 may replace, at most
    x, n = torch.randn(64), torch.tensor([4, 8, 32])
    loaded = pt2serde.load(str(path))
    assert torch.equal(loaded.module()(x, n), module(x, n))
    assert torch.equal(loaded.module()(x, n), torch.export.load(str(path)).module()(x, n))
    with pytest.raises(Exception, match="u1 == 2\\*u0|Eq\\(u1, 2\\*u0\\)|Runtime assertion failed"):
        loaded.module()(x, torch.tensor([4, 7, 28]))  # the assert still runs in the program
    assert pt2serde.cli.main(["validate", str(path)]) == 0
