"""``guards_code`` is rebuilt from our own expression grammar (:mod:`pt2serde.format.guards`).

Real guards (torch 2.13 exports, the compat corpus) are accepted and keep their tree, and the
loaded program's ``module()`` still refuses inputs that break a guard, exactly as the program
exported directly does. Guards that would run code, walk attributes or compute for minutes
are refused with the ``$.guards_code[i]`` they are at.
"""

from __future__ import annotations

import ast
import glob
import io
import json
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch.export import Dim, export

import pt2serde
from compat import CORPUS
from pt2serde.errors import SerializeError
from pt2serde.format.guards import MAX_BITS, MAX_GUARD_LENGTH, MAX_NODES, canonical_guard

HOSTILE = Path(__file__).resolve().parents[1] / "hostile"


# ----------------------------------------------------------------------------- grammar

#: what torch's guard printers emit (ShapeGuardPythonPrinter for ep._guards_code, and the
#: input guards _unlift writes), each as torch prints it
PRINTED = [
    "((-1) + L['x'].size()[0]) == L['y'].size()[0]",
    "(6*L['x'].size()[0]) == L['y'].size()[0]",
    "L['d']['a'].size()[0] == L['d']['b'][0].size()[0]",
    "L['y'].size()[0] <= 1 + L['x'].size()[1]",
    "(L['x'].size()[0] % 2) == 0",
    "(3*L['x'].size()[0]) == (6*(L['x'].size()[0] // 2))",
    "(L['x'].size()[0] / 2) <= torch.sym_float(L['y'].size()[0])",
    "L['flat_args'][0].size()[0] >= 3",
    "L['x'].stride()[0] == L['x'].size()[1] and L['x'].storage_offset() == 0",
    "L['x'].numel() > 0 or not (L['x'].dim() == 2)",
    "math.isnan(L['f'])",
    "L['f'] == math.inf",
    "L['f'] == -math.inf",
    "L['f'] == 0.5",
    "L['s'] == 'mul'",
    "math.floor(L['x'].size()[0] / 3) == math.ceil(L['x'].size()[1] / 2)",
    "torch._sym_sqrt(L['x'].size()[0]) == 4.0",
    "max(2, L['x'].size()[0]) == min(L['y'].size()[0], 9) + abs(L['n'])",
    "round(L['f'], 2) == 0.25",
    "(L['x'].size()[0] if L['n'] > 2 else 3) != L['x'].size()[0]**2",
    "IsNonOverlappingAndDenseIndicator(L['x'].size()[0], 3, L['x'].stride()[0], 1) == 1",
    "L['x'].size()[0] & 7 == 0",
    "L['n'] == 9223372036854775807 or L['n'] == -9223372036854775808",
]


@pytest.mark.parametrize("text", PRINTED)
def test_printed_guards_keep_their_tree(text):
    canonical = canonical_guard(text)
    assert ast.dump(ast.parse(canonical, mode="eval")) == ast.dump(ast.parse(text, mode="eval"))
    assert canonical_guard(canonical) == canonical
    assert "\n" not in canonical and "\r" not in canonical


@pytest.mark.parametrize("text,message", [
    ("exec('x')", r"call of `exec`"),
    ("__import__('os').system('x') == 0", r"call of `__import__\('os'\)\.system`"),
    ("L['x'].__class__", r"attribute `\.__class__`"),
    ("L['x'].size", r"attribute `\.size`"),
    ("L['x'].size() * 3", r"`\.size\(\)` that is not indexed by an int constant"),
    ("L['x'].size(0) == 1", r"`\.size\(\)` that is not indexed"),
    ("L['x'].numel(1) == 1", r"arguments of `\.numel\(\)`"),
    ("L['x'].size()[0] ** 10**9", r"exponent `10 \*\* 9` \(only a constant of at most 64\)"),
    ("L['x'].size()[0] ** L['n']", r"exponent `L\['n'\]`"),
    ("((L['x'].size()[0] ** 64) ** 64) ** 64 > 0", rf"its value can grow to 262144 bits \(at most {MAX_BITS}\)"),
    ("L['n'] == 18446744073709551616", r"integer constant of 65 bits"),
    ("L['n'] == 9223372036854775809", r"integer constant of 64 bits"),
    ("L['n'] << 3", r"operator `LShift`"),
    ("L['s'] == 'a\"b'", r"string constant 'a\"b' is not text without quotes"),
    ("L['s'] == 'a\\\\b'", r"string constant .* is not text without quotes, backslashes"),
    ("L['s\"'].size()[0] == 1", r"input key .* is not text without quotes"),
    ("'ab' * 3", r"string constant outside a comparison"),
    ("L['x'][0.5] == 1", r"index `0\.5`"),
    ("L['x'][-1] == 1", r"index `-1`"),
    ("x.size()[0] == 1", r"subscript of `x\.size\(\)`"),
    ("L == 1", r"name `L`"),
    ("math.pi > 3", r"attribute `\.pi`"),
    ("min() == 1", r"0 arguments for `min`"),
    ("max(*L['xs']) == 1", r"1 arguments for `max`"),
    ("abs(x=1) == 1", r"keyword arguments"),
    ("round(1, 2, 3) == 1", r"3 arguments for `round`"),
    ("L['x'] is None", r"comparison `Is`"),
    ("1 in L['x']", r"comparison `In`"),
    ("[1][0] == 1", r"subscript of `\[1\]`"),
    ("(lambda: 1)() == 1", r"call of `lambda: 1`"),
    ("1e999 > 0", r"float constant that is not finite"),
    ("1j == 0", r"complex constant"),
    ("b'x' == 0", r"bytes constant"),
    ("f'{L}' == 'x'", r"JoinedStr expression"),
    ("(x := 1)", r"NamedExpr expression"),
    ("~L['n']", r"operator `Invert`"),
])
def test_what_the_grammar_refuses(text, message):
    with pytest.raises(pt2serde.SerializeError, match=rf"^guard .* is not allowed: {message}.* - at `\$\.guards_code\[3\]`$"):
        canonical_guard(text, "$.guards_code[3]")


@pytest.mark.parametrize("text,message", [
    ("1\nimport os", r"^guard '1\\nimport os' is not an expression \(invalid syntax\) - at `\$\.guards_code\[0\]`$"),
    ("1 #\rimport os", r"^guard .* is not an expression"),
    ("-" * 5000 + "1", r"^guard .* is not an expression \((MemoryError|RecursionError|too many)"),
    ("(" * 300 + "1" + ")" * 300, r"^guard .* is not an expression \(too many nested parentheses\)"),
    ("1\x00", r"^guard .* is not an expression"),
    ("x" * (MAX_GUARD_LENGTH + 1), rf"^guard is {MAX_GUARD_LENGTH + 1} characters long \(at most {MAX_GUARD_LENGTH}\)"),
    ("1" + " + 1" * 200, r"^guard .* is not allowed: nested more than 128 levels deep"),
    ("max(" + "1, " * (MAX_NODES + 10) + "1) == 1", rf"^guard .* is not allowed: more than {MAX_NODES} syntax nodes"),
])
def test_what_does_not_parse_or_is_too_big(text, message):
    with pytest.raises(pt2serde.SerializeError, match=message):
        canonical_guard(text, "$.guards_code[0]")


def test_not_a_string():
    with pytest.raises(pt2serde.SerializeError, match=r"^guard 3 is not a string - at `\$\.guards_code\[1\]`$"):
        canonical_guard(3, "$.guards_code[1]")  # type: ignore[arg-type]


def test_the_grammar_module_is_torch_free():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['sympy'] = None\n"
            "import pt2serde.format.guards\n"
            "assert pt2serde.format.guards.canonical_guard(\"L['x'].size()[0]==2\") == \"L['x'].size()[0] == 2\"\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------------------- real programs


class Derived(torch.nn.Module):
    def forward(self, x, y):
        return x[1:] + y


class View(torch.nn.Module):
    def forward(self, x, y):
        return x.view(-1) + y


class DictIn(torch.nn.Module):
    def forward(self, d):
        return d["a"] + d["b"][0]


class Pad(torch.nn.Module):
    def forward(self, x, y):
        return torch.nn.functional.pad(x, (0, 1))[:, : y.shape[0]]


class EvenRows(torch.nn.Module):
    def forward(self, x):
        torch._check(x.shape[0] % 2 == 0)
        return x.reshape(2, -1, x.shape[1])


class HalfAtMost(torch.nn.Module):
    def forward(self, x, y):
        torch._check(x.shape[0] / 2 <= y.shape[0])
        return x.sum() + y.sum()


class Scalars(torch.nn.Module):
    def forward(self, x, k: int, f: float, s: str):
        return x * k * f if s == "mul" else x


def _n():
    return Dim("n", min=3, max=100)


#: name -> (module, example inputs, dynamic shapes, inputs that break a guard)
PROGRAMS = {
    "derived dim": (Derived(), (torch.ones(5, 2), torch.ones(4, 2)), lambda: ({0: _n() + 1}, {0: _n()}),
                    (torch.ones(6, 2), torch.ones(4, 2))),
    "multiple of a dim": (View(), (torch.ones(4, 6), torch.ones(24)),
                          lambda: ({0: (p := Dim("p", min=2, max=50)), 1: 6}, {0: 6 * p}),
                          (torch.ones(4, 6), torch.ones(30))),
    "dict input, shared dim": (DictIn(), ({"a": torch.ones(3, 2), "b": [torch.ones(3, 2)]},),
                               lambda: ({"a": {0: (q := Dim("q"))}, "b": [{0: q}]},),
                               ({"a": torch.ones(3, 2), "b": [torch.ones(4, 2)]},)),
    "min/max relation": (Pad(), (torch.ones(3, 5), torch.ones(4)), lambda: ({1: Dim("u")}, {0: Dim("v")}),
                         (torch.ones(3, 5), torch.ones(9))),
    "modulo": (EvenRows(), (torch.ones(8, 3),), lambda: ({0: Dim.AUTO},), (torch.ones(7, 3),)),
    "float division": (HalfAtMost(), (torch.ones(6), torch.ones(5)), lambda: ({0: Dim.AUTO}, {0: Dim.AUTO}),
                       (torch.ones(12), torch.ones(5))),
    "int, float and str inputs": (Scalars(), (torch.ones(3), 4, 0.5, "mul"), lambda: None,
                                  (torch.ones(3), 4, 0.5, "add")),
}


@pytest.fixture(scope="module")
def exported():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: export(m, args, dynamic_shapes=ds()) for name, (m, args, ds, _) in PROGRAMS.items()}


def _failure(module, args):
    try:
        module(*args)
    except Exception as e:  # noqa: BLE001 - we compare whatever both raise
        return type(e).__name__, str(e).split("\n")[0]
    return None


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_real_guards_survive_a_round_trip_and_still_guard(name, exported):
    ep = exported[name]
    buf = io.BytesIO()
    pt2serde.save(ep, buf)
    loaded = pt2serde.load(io.BytesIO(buf.getvalue()))
    assert len(loaded._guards_code) == len(ep._guards_code)
    for ours, theirs in zip(loaded._guards_code, ep._guards_code):
        assert ast.dump(ast.parse(ours, mode="eval")) == ast.dump(ast.parse(theirs, mode="eval"))
    args, bad = PROGRAMS[name][1], PROGRAMS[name][3]
    direct, ours = ep.module(), loaded.module()
    torch.testing.assert_close(ours(*args), direct(*args))
    expected = _failure(direct, bad)
    assert expected is not None and _failure(ours, bad) == expected


def test_the_corpus_has_guards(exported):
    """The programs above do produce the guard forms this file claims to cover."""
    texts = [g for ep in exported.values() for g in ep._guards_code]
    assert any("//" in g or "%" in g for g in texts) and any("torch.sym_float" in g for g in texts)
    assert any("['d']['b'][0]" in g for g in texts) and len(texts) >= 8


def _compat_guards() -> list[tuple[str, str]]:
    from pt2serde.format.archive import ArchiveReader

    out = []
    for path in sorted(glob.glob(str(CORPUS / "*" / "*.pt2"))):
        reader = ArchiveReader(path)
        try:
            for record in reader.names():
                if re.search(r"(^|/)models/[^/]+\.json$", record):
                    doc = json.loads(reader.read(record))
                    out += [(f"{path}:{record}", g) for g in doc.get("guards_code") or []]
        finally:
            reader.close()
    return out


def test_every_compat_corpus_guard_is_accepted():
    guards = _compat_guards()
    assert guards, "the compat corpus holds guards (derived dims)"
    for where, text in guards:
        canonical = canonical_guard(text, where)
        assert ast.dump(ast.parse(canonical, mode="eval")) == ast.dump(ast.parse(text, mode="eval")), where


# ----------------------------------------------------------------------------- hostile


def _hostile(name: str):
    sys.path.insert(0, str(HOSTILE))
    import cases_guards

    return {c.name: c for c in cases_guards.CASES}[name]


@pytest.mark.parametrize("name", ["guard: module-level break-out after a comment (dynamic)",
                                  "guard: plain expression calling exec (small)",
                                  "guard: quote breaking the Guard failed literal (dynamic)"])
def test_pytorch_runs_the_guard_when_the_module_is_built_or_called(name, tmp_path):
    """What the guard cases defend against is real: ``torch.export.load`` keeps the guard and
    ``module()`` execs it (break-out: while building; expressions: on every call)."""
    marker = tmp_path / "pwned"
    case = _hostile(name)
    data = case.build(str(marker))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.load(io.BytesIO(data))
        try:
            args = ep.example_inputs[0]
            ep.module()(*args)
        except Exception:
            pass  # the quote case breaks torch._assert's arity after the code ran
    assert marker.exists()
    with pytest.raises(pt2serde.SerializeError, match=case.refused):
        pt2serde.load(io.BytesIO(data))


def test_no_guard_sees_math_beyond_a_bound():
    """The runtime cost bound: the largest accepted power finishes at once."""
    text = canonical_guard("L['x'].size()[0] ** 64 > 0")
    assert eval(text.replace("L['x'].size()[0]", str(2**63)), {"math": math}) is True  # 2**4032
    with pytest.raises(SerializeError, match=r"its value can grow to 8192 bits \(at most 4096\)"):
        canonical_guard("(L['x'].size()[0] ** 64) ** 2 > 0")


def test_min_max_abs_keep_their_arguments_bits():
    """``min``/``max``/``abs`` give one of their arguments (or its size): a padded window count
    ``max(1, (s + pad) // 7)`` stays a runtime size (64 bits), so products of a few of them, as
    a Swin-style window partition guards, are accepted (each counted 1024 bits before: refused);
    their products still add up, and float functions still count a float's 1024 bits."""
    window = "max(1, (L['x'].size()[1] + ((7 + (-1)*(L['x'].size()[1] % 7)) % 7)) // 7)"
    guard = f"8*{window}*{window}*{window}*{window} <= 2 ** 40"
    assert canonical_guard(guard).count("max(1, ") == 4
    assert canonical_guard(f"abs(min({window}, 3)) == 1")
    with pytest.raises(SerializeError, match=r"its value can grow to 4160 bits \(at most 4096\)"):
        canonical_guard("*".join(["max(1, L['x'].size()[0])"] * 65) + " > 0")
    with pytest.raises(SerializeError, match=r"its value can grow to 4096|its value can grow to 4\d{3} bits"):
        canonical_guard("max(1, math.floor(L['f'])) * max(1, math.floor(L['f'])) * max(1, math.floor(L['f'])) "
                        "* max(1, math.floor(L['f'])) * 2 > 0")


def test_round_digits_are_a_small_constant():
    """round(x, -n) computes 10**n (a red-team find: -10**8 hung every call of the module)."""
    assert canonical_guard("round(L['x'].size()[0], -3) == 0") == "round(L['x'].size()[0], -3) == 0"
    for digits in ("-100000000", "L['x'].size()[0]", "-65"):
        with pytest.raises(SerializeError, match=r"`round` digits .* \(only a constant of at most 64 in size\)"):
            canonical_guard(f"round(L['x'].size()[0], {digits}) == 0")


def test_the_guards_of_a_document_are_capped_together():
    """Each guard runs on every call: many guards each under the caps add up (a red-team find:
    12 guards of 65536-bit divisions took 5 s per call); one budget per document."""
    from pt2serde.format.guards import GuardBudget, MAX_DOCUMENT_NODES

    budget = GuardBudget()
    guard = "max(" + ", ".join(["L['x'].size()[0] // 3"] * 100) + ") > 0"
    with pytest.raises(SerializeError, match=rf"the document's guards hold more than {MAX_DOCUMENT_NODES} syntax "
                                             r"nodes together .* - at `\$\.guards_code\[\d+\]`"):
        for i in range(1000):
            canonical_guard(guard, f"$.guards_code[{i}]", budget)
    assert 10 < i < 100
