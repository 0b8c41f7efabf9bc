"""Baseline cases: the unmodified base programs load and survive every entry point."""

from everywhere import Case, base_archive, doc_case

CASES = [doc_case(f"unmodified {b}", lambda doc, marker: None, None, base=b)
         for b in ("small", "nested", "cond", "dynamic")]
