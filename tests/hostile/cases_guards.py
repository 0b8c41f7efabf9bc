"""Attack class 2: ``guards_code`` strings that PyTorch ``exec``s inside ``ep.module()``.

torch pastes each guard into ``torch._assert(<guard>, "Guard failed: <guard>")`` of a
function it ``exec``s whenever the program has example inputs (both bases here have them).
Every case must end in a ``SerializeError`` naming ``$.guards_code[i]`` (pt2serde rebuilds
guards from its own grammar, :mod:`pt2serde.format.guards`), with no marker.
"""

from __future__ import annotations

from everywhere import doc_case, exec_code


def breakout(marker: str) -> str:
    """A guard that runs code at module level of torch's generated guard function.

    torch checks only a copy with the newlines removed (``ast.parse`` of it, for the error
    message); there the ``#`` comments out the rest, so the copy is just ``1``. In the code
    itself the newline ends the comment, ``, "")`` closes ``torch._assert(``, the next line
    runs at module level, and a fresh ``def`` takes up torch's own tail."""
    return f'1#\n, "")\n{exec_code(marker)}\ndef _(*args):\n  torch._assert(1'


def _guards(make):
    def mutate(doc: dict, marker: str) -> None:
        doc.setdefault("guards_code", [])
        doc["guards_code"] = list(doc["guards_code"]) + ["L['x'].size()[0] >= 0", make(marker)]
    return mutate


_WHERE = r".*at `\$\.guards_code\[1\]`"

#: (name, guard from the marker, what the refusal says)
GUARDS = [
    ("module-level break-out after a comment", breakout, r"guard .* is not an expression"),
    ("plain expression calling exec", lambda m: f"{exec_code(m)} == None", r"guard .* is not allowed: call of `exec`"),
    ("attribute walk from an input", lambda m: "L['x'].__class__.__init__.__globals__ == None",
     r"guard .* is not allowed: attribute `\.__globals__`"),
    ("huge exponent", lambda m: "L['x'].size()[0] ** 10**9 > 0", r"guard .* is not allowed: exponent `10 \*\* 9`"),
    ("tower of powers", lambda m: "((((L['x'].size()[0] ** 64) ** 64) ** 64) ** 64) ** 64 > 0",
     r"guard .* is not allowed: its value can grow to \d+ bits"),
    ("quote breaking the Guard failed literal", lambda m: f"L['x'].size()[0] != '\", {exec_code(m)}, \"'",
     r"guard .* is not allowed: string constant .* is not text without quotes"),
    ("deep nesting", lambda m: "-" * 5000 + "1 < L['x'].size()[0]", r"guard .* is not (an expression|allowed: nested)"),
]

CASES = [doc_case(f"guard: {name} ({base})", _guards(make), refused + _WHERE, base=base)
         for name, make, refused in GUARDS for base in ("dynamic", "small")]
