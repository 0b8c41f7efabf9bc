"""Symbolic expressions that make sympy work without bound, and the schema-7 upgrade of long ones.

Base "dynamic" has one symbolic dimension ``s77`` (the size of ``x`` and of ``mul``). Each case
puts an expression there; the grammar (:mod:`pt2serde._srepr`, shared by ``load`` and
``validate``) refuses it by its budgets before sympy sees it, or it loads quickly.
The schema-7 cases start from a PyTorch 2.5.1 archive of the compat corpus, whose expressions
are sympy's printed form and go through the upgrader.
"""

from __future__ import annotations

import json
from pathlib import Path

from everywhere import Case, doc_case

import test_hostile_archives as H

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "compat-corpus"
S = "Symbol('s77', positive=True, integer=True)"
PROGRAM_V7 = "serialized_exported_program.json"


def _size(expr: str):
    """A mutation putting ``expr`` as the symbolic size of ``x`` and ``mul``."""

    def mutate(doc: dict, marker: str) -> None:
        for name in ("x", "mul"):
            doc["graph_module"]["graph"]["tensor_values"][name]["sizes"][0]["as_expr"]["expr_str"] = expr

    return mutate


def _legacy(expr: str, deflate: bool = True) -> Case:
    """dyn_batch of PyTorch 2.5.1 (schema 7) with every symbolic size printed as ``expr``."""

    def build(marker: str) -> bytes:
        from pt2serde.archive import ArchiveReader

        reader = ArchiveReader((CORPUS / "2.5.1" / "dyn_batch.pt2").read_bytes())
        records = [(n, reader.read(n)) for n in reader.names()]
        doc = json.loads(dict(records)[PROGRAM_V7])
        for meta in doc["graph_module"]["graph"]["tensor_values"].values():
            for size in meta["sizes"]:
                if "as_expr" in size:
                    size["as_expr"]["expr_str"] = expr
        stored = H.raw_zip([(n.encode(), v) for n, v in records if n != PROGRAM_V7])
        program = H.raw_zip([(PROGRAM_V7.encode(), json.dumps(doc).encode())], method=8 if deflate else 0)
        return H._merge(stored, program)

    return build


_SUMS = [f"Add({S}, Integer({i + 1}))" for i in range(64)]

CASES = [
    doc_case("3*s0**(10**8) as an input size", _size(f"Mul(Integer(3), Pow({S}, Integer(100000000)))"),
             r"Pow of a symbolic base with exponent 100000000, over the limit of 64", base="dynamic"),
    doc_case("Mod(s0**(10**8), 7) as an input size", _size(f"Mod(Pow({S}, Integer(100000000)), Integer(7))"),
             r"Pow of a symbolic base with exponent 100000000, over the limit of 64", base="dynamic"),
    doc_case("Mod((s0 + 1)**1024, 7) as an input size",
             _size(f"Mod(Pow(Add({S}, Integer(1)), Integer(1024)), Integer(7))"),
             r"exponent 1024, over the limit of 64", base="dynamic"),
    doc_case("Mod of a product of 64 sums (degree blow-up)", _size(f"Mod(Mul({', '.join(_SUMS)}), Integer(7))"),
             r"Mul\(\.\.\.\) of sums expands to more than 64 terms", base="dynamic"),
    doc_case("FloorDiv of a product of 16 sums of distinct symbols",
             _size("FloorDiv(Mul(" + ", ".join(f"Add(Symbol('s{i + 100}', positive=True, integer=True), Integer(1))"
                                                 for i in range(16)) + f"), Add({S}, Integer(1)))"),
             r"Mul\(\.\.\.\) of sums expands to more than 64 terms", base="dynamic"),
    doc_case("degree 128 by products of powers",
             _size("Mul(" + ", ".join([f"Pow({S}, Integer(64))"] * 2) + ")"),
             r"Mul\(\.\.\.\) has degree 128, over the limit of 64", base="dynamic"),
    doc_case("Min/Max nested 50 deep (sympy compares nested lattices pairwise)",
             _size(__import__("functools").reduce(
                 lambda e, j: ("Max(" if j % 2 else "Min(") + e + f", Add({S}, Integer({j})))", range(50), S)),
             r"holds Max/Min calls of more than 16 arguments in all", base="dynamic"),
    doc_case("Max of 33 arguments", _size("Max(" + ", ".join(_SUMS[:33]) + ")"),
             r"Max takes at most 4 arguments, got 33", base="dynamic"),
    # expressions within the budgets load; they are equal to s77, so the sample input still fits
    doc_case("Max(1, (6*s0)//6) + 2*s0**64 - 2*s0**64 loads", _size(
        f"Add(Max(Integer(1), FloorDiv(Mul(Integer(6), {S}), Integer(6))), Mul(Integer(2), Pow({S}, Integer(64))), "
        f"Mul(Integer(-2), Pow({S}, Integer(64))))"), None, base="dynamic"),
    Case("schema 7: 100 KB printed expressions, deflated (quadratic upgrade)",
         _legacy(" - ".join(["s0"] * 20_000)), r"invalid symbolic expression: .*(values|characters)",
         base="dynamic"),
    Case("schema 7: a sum of 201 printed terms loads (upgraded flat, not nested 200 deep)",
         _legacy("s0" + " + s0 - s0" * 100), None, base="dynamic"),
]
