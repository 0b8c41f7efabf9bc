"""Bounded process-wide memos: the one rule for caches that outlive a load.

Values recur from load to load (treespec texts, module-stack entries, sympy printouts), so a
few readers keep what they computed for the next one. What is kept comes from files, so each
memo has a size: when it is full it is emptied before the next entry goes in (what is lost is
only recomputed). Callers keep only values that are a pure function of the key and that they
never change.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["remember"]

V = TypeVar("V")


def remember(memo: dict[Any, V], key: Any, value: V, size: int) -> V:
    """``memo[key] = value``, emptying ``memo`` first when it holds ``size`` entries; returns ``value``."""
    if len(memo) >= size:
        memo.clear()
    memo[key] = value
    return value
