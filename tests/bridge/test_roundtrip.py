"""Every corpus program survives serialize -> deserialize, and PyTorch's documents load too.

For each program in both forms:
* the rebuilt graph has the same nodes op by op, the same ``val`` shapes, strides and
  dtypes (symbolic dims compared as text), the same stack traces, module stacks and
  source-function stacks, and the same ``unbacked_bindings`` presence;
* ``module()`` gives the same outputs as the original program;
* the loaded program can be decomposed, unflattened and exported again.
"""

import pytest
import torch
import torch.utils._pytree as pytree
from torch._export.serde.serialize import serialize as torch_serialize

import pt2serde
from checks import outputs_close, program_inputs, run, same_graph, same_ranges, same_signature
from programs import CORPUS, corpus_ids, exported
from pt2serde.format.upgrade import program_from_json

IDS = corpus_ids()
RUNNABLE = [(n, f) for n, f in IDS if CORPUS[n].compare_outputs]


def _cloned(values: dict) -> dict:
    """Private copies of the tensors (programs that mutate state must not share it)."""
    out = {}
    for k, v in values.items():
        if isinstance(v, torch.nn.Parameter):
            out[k] = torch.nn.Parameter(v.detach().clone(), requires_grad=v.requires_grad)
        elif isinstance(v, torch.Tensor):
            out[k] = v.clone()
        else:
            out[k] = v
    return out


def _raw_symbolic_arguments(gm: torch.fx.GraphModule) -> list[str]:
    """Nodes with a SymInt/SymFloat/SymBool object among their arguments (fx warns about those in
    ``create_node``; graph_load skips that walk because a symbolic argument is always a node)."""
    sym = (torch.SymInt, torch.SymFloat, torch.SymBool)
    return [f"{m}.{n.name}" for m, sub in gm.named_modules() if isinstance(sub, torch.fx.GraphModule)
            for n in sub.graph.nodes if any(isinstance(v, sym) for v in pytree.tree_iter((n.args, n.kwargs)))]


def _roundtrip(ep):
    return pt2serde.deserialize(pt2serde.serialize(ep))


@pytest.mark.parametrize("name,form", IDS, ids=lambda v: v)
def test_roundtrip_graph_and_outputs(name, form):
    ep = exported(name, form)
    loaded = _roundtrip(ep)
    same_graph(ep.graph_module, loaded.graph_module)
    same_signature(ep.graph_signature, loaded.graph_signature)
    same_ranges(ep.range_constraints, loaded.range_constraints)
    assert [e.fqn for e in loaded.module_call_graph] == [e.fqn for e in ep.module_call_graph]
    assert [v.dialect for v in loaded.verifiers] == [v.dialect for v in ep.verifiers]
    assert not _raw_symbolic_arguments(loaded.graph_module)
    if CORPUS[name].compare_outputs:  # (joint graphs and the like cannot be run through module())
        outputs_close(run(ep, name), run(loaded, name), **CORPUS[name].extra.get("tolerance", {}))


@pytest.mark.parametrize("name", [n for n, f in RUNNABLE if f == "export"])
def test_loaded_program_decomposes_unflattens_and_reexports(name):
    loaded = _roundtrip(exported(name, "export"))
    args, kwargs = program_inputs(name)
    if "decomposed" in CORPUS[name].forms:  # (run_decompositions cannot retrace some programs at all)
        decomposed = loaded.run_decompositions()
        outputs_close(run(exported(name, "export"), name), run(decomposed, name),
                      **CORPUS[name].extra.get("tolerance", {}))
    if not CORPUS[name].extra.get("no_unflatten"):
        unflat = torch.export.unflatten(loaded)
        outputs_close(run(loaded, name), unflat(*program_inputs(name)[0], **program_inputs(name)[1]),
                      **CORPUS[name].extra.get("tolerance", {}))
    if not CORPUS[name].extra.get("no_reexport"):
        again = torch.export.export(loaded.module(), args, kwargs, strict=False)
        assert again.graph_signature.user_inputs


@pytest.mark.parametrize("name,form", [i for i in corpus_ids(oracle=True) if i in RUNNABLE], ids=lambda v: v)
def test_pytorch_document_loads_with_pt2serde(name, form):
    """The oracle direction: what PyTorch's serializer writes, our deserializer reads."""
    ep = exported(name, form)
    document = torch_serialize(ep).exported_program
    loaded = pt2serde.ExportedProgramDeserializer().deserialize(
        program_from_json(document), _cloned(ep.state_dict), _cloned(ep.constants), ep.example_inputs,
        allow_pickle=True,
    )
    same_graph(ep.graph_module, loaded.graph_module)
    outputs_close(run(ep, name), run(loaded, name), **CORPUS[name].extra.get("tolerance", {}))
