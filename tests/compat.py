"""The cross-release compat corpus (../shared/compat-corpus): manifests, inputs, expected outputs."""

from __future__ import annotations

import json
import os
import sys
from functools import cache

import torch

CORPUS_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "compat-corpus"))
WRITERS = ("2.5.1", "2.6.0", "2.7.1", "2.8.0", "2.9.1", "2.13.0", "2.14.1")
PT2_LAYOUT_WRITERS = ("2.8.0", "2.9.1", "2.13.0", "2.14.1")


def register_corpus_ops() -> None:
    if CORPUS_DIR not in sys.path:
        sys.path.insert(0, CORPUS_DIR)
    import corpus_ops  # noqa: F401  registers the pt2corpus:: custom ops


@cache
def manifest(writer: str) -> dict:
    with open(os.path.join(CORPUS_DIR, writer, "manifest.json")) as f:
        return json.load(f)


def programs(writers=WRITERS) -> list[tuple[str, str]]:
    """(writer, program name) of every archive a writer produced."""
    return [(w, p["name"]) for w in writers for p in manifest(w)["programs"] if p.get("status") == "ok"]


def program_record(writer: str, name: str) -> dict:
    return next(p for p in manifest(writer)["programs"] if p["name"] == name)


def decode(struct, tensors):
    kind = struct["kind"]
    if kind == "tensor":
        t = tensors[struct["key"]]
        if struct.get("complex_as_real"):
            t = torch.view_as_complex(t.contiguous())
        return t.clone()
    if kind == "none":
        return None
    if kind in ("bool", "int", "float", "str"):
        return struct["value"]
    if kind == "tuple":
        return tuple(decode(s, tensors) for s in struct["items"])
    if kind == "list":
        return [decode(s, tensors) for s in struct["items"]]
    if kind == "dict":
        return {k: decode(s, tensors) for k, s in zip(struct["keys"], struct["items"])}
    raise ValueError(f"unknown kind {kind}")


def mismatch(got, exp, rtol, atol, path="out") -> str | None:
    """None when ``got`` matches ``exp`` within tolerance, else where and how it differs."""
    if isinstance(exp, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{path}: expected a tensor, got {type(got).__name__}"
        if got.dtype != exp.dtype or tuple(got.shape) != tuple(exp.shape):
            return f"{path}: {got.dtype}{tuple(got.shape)} vs {exp.dtype}{tuple(exp.shape)}"
        g, e = got.detach(), exp
        if g.is_complex():
            g, e = torch.view_as_real(g), torch.view_as_real(e)
        if not g.is_floating_point():
            return None if torch.equal(g, e) else f"{path}: values differ"
        if torch.allclose(g.float(), e.float(), rtol=rtol, atol=atol, equal_nan=True):
            return None
        return f"{path}: max abs diff {(g.float() - e.float()).abs().max().item():.3g}"
    if isinstance(exp, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(exp):
            return f"{path}: {type(got).__name__} of {len(got) if hasattr(got, '__len__') else '?'} vs {len(exp)}"
        for i, (a, b) in enumerate(zip(got, exp)):
            if (m := mismatch(a, b, rtol, atol, f"{path}/{i}")):
                return m
        return None
    if isinstance(exp, dict):
        if not isinstance(got, dict) or list(got) != list(exp):
            return f"{path}: keys {list(got) if isinstance(got, dict) else type(got)} vs {list(exp)}"
        for k in exp:
            if (m := mismatch(got[k], exp[k], rtol, atol, f"{path}/{k}")):
                return m
        return None
    if exp is None:
        return None if got is None else f"{path}: expected None, got {got!r}"
    if isinstance(exp, (bool, int, float)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        try:
            return None if abs(float(got) - float(exp)) <= atol + rtol * abs(float(exp)) else f"{path}: {got!r} vs {exp!r}"
        except (TypeError, ValueError):
            return f"{path}: {got!r} vs {exp!r}"
    return None if got == exp else f"{path}: {got!r} vs {exp!r}"


def check_cases(load_program, writer: str, name: str) -> list[str]:
    """Run every recorded case of an archive through freshly loaded programs; return the problems.

    ``load_program(path, model_name, extra_files)`` loads one program from the archive.
    """
    from safetensors.torch import load_file

    rec = program_record(writer, name)
    wdir = os.path.join(CORPUS_DIR, writer)
    path = os.path.join(wdir, rec["file"])
    inputs = load_file(os.path.join(wdir, rec["inputs_file"]))
    expected = load_file(os.path.join(wdir, rec["expected_file"]))
    problems = []
    for model_name, model in rec["models"].items():
        for ci, case in enumerate(model["cases"]):
            extra: dict = {}
            ep = load_program(path, model_name, extra)  # anew per case: some programs mutate buffers
            if ci == 0:
                for fname, content in (rec.get("extra_files") or {}).items():
                    got = extra.get(fname)
                    if got != content:
                        problems.append(f"extra file {fname}: got {got!r:.80}")
            args, kwargs = decode(case["args"], inputs), decode(case["kwargs"], inputs)
            with torch.no_grad():
                got = ep.module()(*args, **kwargs)
            m = mismatch(got, decode(case["outputs"], expected), rec["tolerance"]["rtol"], rec["tolerance"]["atol"])
            if m:
                problems.append(f"{model_name}/c{ci}: {m}")
    return problems


def writer_self_check(writer: str, name: str) -> list[str]:
    """What the writer's own check found wrong before saving (empty: the program was right)."""
    problems = []
    for model in program_record(writer, name)["models"].values():
        check = model.get("export_self_check")
        if isinstance(check, list):
            problems.extend(check)
        elif check not in (None, "ok"):
            problems.append(str(check))
    return problems
