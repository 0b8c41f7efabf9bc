"""A loaded program's graph module generates its Python code on first use (bridge/lazy_code.py).

What a user relies on: the code, the printout and a direct call of ``ep.graph_module`` are
exactly what an eager build (PyTorch's loader) gives; ``copy.deepcopy`` and ``module()`` work;
and programs that other code (another thread, the user) builds while pt2serde loads are built
as PyTorch builds them, with PyTorch's function back in place once no load is running.
"""

import contextlib
import copy
import threading
import time

import pytest
import torch
import torch.export.exported_program as epm
from torch.fx._lazy_graph_module import _LazyGraphModule

import pt2serde
from pt2serde.bridge import program as program_mod
from pt2serde.bridge.lazy_code import deferred_codegen
from programs import corpus_ids, exported

TORCH_HOOK = epm._create_graph_module_for_export


def _compiled(gm: torch.fx.GraphModule) -> bool:
    return not (isinstance(gm, _LazyGraphModule) and gm._needs_recompile())


def _graph_codes(gm: torch.fx.GraphModule) -> dict[str, str]:
    return {name: m.code for name, m in gm.named_modules() if isinstance(m, torch.fx.GraphModule)}


@pytest.mark.parametrize("name,form", corpus_ids(oracle=True), ids=lambda v: v)
def test_code_written_on_first_use_is_what_an_eager_build_writes(name, form, monkeypatch):
    ep = exported(name, form)
    artifact = pt2serde.serialize(ep)
    loaded = pt2serde.deserialize(artifact)
    assert isinstance(loaded.graph_module, torch.fx.GraphModule)
    assert not _compiled(loaded.graph_module), "the load compiled the graph module's code"
    assert epm._create_graph_module_for_export is TORCH_HOOK
    monkeypatch.setattr(program_mod, "deferred_codegen", contextlib.nullcontext)
    eager = pt2serde.deserialize(artifact)
    assert _compiled(eager.graph_module)
    assert _graph_codes(loaded.graph_module) == _graph_codes(eager.graph_module)
    assert _compiled(loaded.graph_module)
    assert str(loaded) == str(eager)


def _direct_args(ep, x):
    out = []
    for spec in ep.graph_signature.input_specs:
        if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT:
            out.append(x)
        else:
            out.append(ep.state_dict[spec.target])
    return out


def test_direct_call_and_deepcopy_of_a_loaded_program(small, tmp_path):
    ep, x = small
    path = tmp_path / "small.pt2"
    torch.export.save(ep, path)
    loaded = pt2serde.load(path)
    want = ep.module()(x)
    # the graph module itself, called without module(): compiled at this call
    got = loaded.graph_module(*_direct_args(loaded, x))
    torch.testing.assert_close(got[0], want)
    twin = copy.deepcopy(pt2serde.load(path))
    torch.testing.assert_close(twin.module()(x), want)
    assert twin.graph_module.code == torch.export.load(path).graph_module.code


def test_threads_that_first_use_one_program_write_its_code_one_at_a_time(small, tmp_path, monkeypatch):
    """fx renames the graph's nodes while it writes code: two writers at once garble it for good."""
    ep, x = small
    path = tmp_path / "small.pt2"
    torch.export.save(ep, path)
    loaded = pt2serde.load(path)
    count, most, lock = [0], [0], threading.Lock()
    real = torch.fx.Graph.python_code

    def slow_python_code(self, *args, **kwargs):  # widens the window two writers would share
        with lock:
            count[0] += 1
            most[0] = max(most[0], count[0])
        time.sleep(0.05)
        try:
            return real(self, *args, **kwargs)
        finally:
            with lock:
                count[0] -= 1

    monkeypatch.setattr(torch.fx.Graph, "python_code", slow_python_code)
    start = threading.Barrier(3)
    got, errors = {}, []

    def use(kind):
        try:
            start.wait(60)
            gm = loaded.graph_module
            if kind == "call":
                got[kind] = gm(*_direct_args(loaded, x))[0]
            elif kind == "code":
                got[kind] = gm.code
            else:
                got[kind] = gm.print_readable(print_output=False)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=use, args=(k,)) for k in ("call", "code", "print")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert most[0] == 1, "two threads wrote the graph's code at once"
    torch.testing.assert_close(got["call"], ep.module()(x))
    assert got["code"] == torch.export.load(path).graph_module.code


def test_programs_other_threads_build_meanwhile_are_built_eagerly(small):
    ep, x = small
    inside, release = threading.Event(), threading.Event()
    built = {}

    def loader():
        with deferred_codegen():
            inside.set()
            release.wait(60)
            built["lazy"] = epm.ExportedProgram(
                root=ep.graph_module, graph=copy.deepcopy(ep.graph), graph_signature=ep.graph_signature,
                state_dict=ep.state_dict, range_constraints=ep.range_constraints,
                module_call_graph=ep.module_call_graph, verifiers=ep.verifiers,
            )

    t = threading.Thread(target=loader)
    t.start()
    try:
        assert inside.wait(60)
        assert epm._create_graph_module_for_export is not TORCH_HOOK  # installed while a load runs
        other = torch.export.export(_small_module(), (x,))  # a fresh export on this thread meanwhile
        assert _compiled(other.graph_module) and not isinstance(other.graph_module, _LazyGraphModule)
    finally:
        release.set()
        t.join(60)
    assert not _compiled(built["lazy"].graph_module)
    assert epm._create_graph_module_for_export is TORCH_HOOK


def _small_module():
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())


def test_concurrent_loads_are_lazy_and_put_pytorchs_function_back(small, tmp_path):
    ep, x = small
    path = tmp_path / "small.pt2"
    torch.export.save(ep, path)
    start = threading.Barrier(4)
    results, errors = [], []

    def load():
        try:
            start.wait(60)
            for _ in range(5):
                results.append(pt2serde.load(path))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 20
    assert not any(_compiled(r.graph_module) for r in results)
    torch.testing.assert_close(results[-1].module()(x), ep.module()(x))
    assert epm._create_graph_module_for_export is TORCH_HOOK


def test_a_function_someone_else_put_in_place_meanwhile_is_kept(monkeypatch):
    theirs = lambda root, graph: TORCH_HOOK(root, graph)  # noqa: E731 - someone's own wrapper
    with deferred_codegen():
        monkeypatch.setattr(epm, "_create_graph_module_for_export", theirs)
    assert epm._create_graph_module_for_export is theirs
    with deferred_codegen():  # and ours wraps theirs, for other threads, while a load runs
        assert epm._create_graph_module_for_export is not theirs
    assert epm._create_graph_module_for_export is theirs
