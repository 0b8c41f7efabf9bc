"""pt2serde.bridge.targets: call targets outside the allowlist are refused (and never run), and
refused lookups leave nothing behind in ``torch.ops`` (issue 10, finding 12b)."""

import copy

import pytest
import torch

import pt2serde
from artifacts import artifact_with
from pt2serde import SerializeError, schema
from pt2serde.format import codec, upgrade


@pytest.fixture(scope="module")
def doc(small) -> schema.ExportedProgram:
    """The small program's document, decoded."""
    return upgrade.program_from_json(pt2serde.serialize(small[0]).exported_program)


# ------------------------------------------------------------------------- the allowlist


@pytest.mark.parametrize("target", [
    "os.system",
    "builtins.eval",
    "torch.load",
    "torch._C._pickle_load_obj",
    "torch.ops.aten.add.Tensor.__globals__",
    "torch.ops.aten.__class__.__init__.__globals__",
    "subprocess.check_call",
    "#nonexistent:op",
])
def test_call_target_outside_the_allowlist_is_refused(small, target):
    art = pt2serde.serialize(small[0])

    def evil(d):
        d["graph_module"]["graph"]["nodes"][0]["target"] = target

    # names with a dunder part are refused before any lookup, by the gate validate shares
    with pytest.raises(SerializeError, match=r"Failed deserializing node|(is not an operator name|is not an operator "
                                             r"or a known symbolic function; refusing to resolve it) - at "
                                             r"`\$\.graph_module\.graph\.nodes\[0\]\.target`"):
        pt2serde.deserialize(artifact_with(art, evil))


def test_call_target_crafted_to_run_code_never_runs(small, tmp_path):
    """A node calling os.system('touch marker') is refused at load; nothing runs even when called."""
    marker = tmp_path / "pwned"
    ep, x = small
    art = pt2serde.serialize(ep)

    def evil(d):
        node = d["graph_module"]["graph"]["nodes"][0]
        node["target"] = "os.system"
        node["inputs"] = [{"name": "", "arg": {"as_string": f"touch {marker}"}, "kind": 1}]

    with pytest.raises(SerializeError, match=r"Call target 'os\.system' is not an operator"):
        pt2serde.deserialize(artifact_with(art, evil))
    assert not marker.exists()


# ------------------------------------------------------- torch.ops lookups (finding 12b)


def _load_with(doc: schema.ExportedProgram, change) -> None:
    d = copy.deepcopy(doc)
    change(d)
    art = pt2serde.SerializedArtifact(codec.to_json_bytes(d), b"", b"", b"")
    pt2serde.deserialize(art)


@pytest.mark.parametrize("target,message", [
    ("torch.ops.__path__.t.default", r"call target 'torch\.ops\.__path__\.t\.default' is not an operator name"),
    ("torch.ops.no_such_ns_xyz.t.default", r"failed to resolve torch\.ops\.no_such_ns_xyz\.t\.default"),
    ("torch.ops.aten.no_such_op_xyz.default", r"failed to resolve torch\.ops\.aten\.no_such_op_xyz\.default"),
])
def test_failed_lookups_leave_nothing_in_torch_ops(doc, target, message):
    """torch.ops.__getattr__ creates (and keeps) a namespace for any name, an op packet for any
    op name of a namespace: a refused target must not have asked it."""
    ns, op = target.split(".")[2:4]
    owner, attr = (torch.ops.aten, op) if ns == "aten" else (torch.ops, ns)
    assert attr not in vars(owner)

    def change(d):
        d.graph_module.graph.nodes[0].target = target

    with pytest.raises(SerializeError, match=message):
        _load_with(doc, change)
    assert attr not in vars(owner)


def test_source_fn_stack_lookups_leave_nothing_in_torch_ops(doc):
    from pt2serde.bridge.targets import resolve_meta_function

    assert resolve_meta_function("torch.ops.__path__.x") == "torch.ops.__path__.x"
    assert resolve_meta_function("torch.ops.no_such_ns_abc.x") == "torch.ops.no_such_ns_abc.x"
    assert resolve_meta_function("torch.ops.aten.add") is torch.ops.aten.add
    assert "__path__" not in vars(torch.ops) and "no_such_ns_abc" not in vars(torch.ops)


def test_registered_ops_still_resolve():
    from pt2serde.bridge.targets import resolve_target

    assert resolve_target("torch.ops.aten.add.Tensor") is torch.ops.aten.add.Tensor
    assert resolve_target("torch.ops.aten.t.default") is torch.ops.aten.t.default
    assert resolve_target("torch.ops.aten._to_copy.default") is torch.ops.aten._to_copy.default
    assert resolve_target("torch.ops.higher_order.cond") is torch.ops.higher_order.cond


def test_aten_bitwise_dunder_ops_resolve_and_other_dunders_stay_refused(doc):
    """transformers' causal masks export as ``torch.ops.aten.__and__.Tensor``: aten's operators
    named after Python's bitwise dunders resolve; a dunder anywhere else is still refused."""
    from pt2serde.bridge.targets import resolve_target
    from pt2serde.format import names

    assert resolve_target("torch.ops.aten.__and__.Tensor") is torch.ops.aten.__and__.Tensor
    assert resolve_target("torch.ops.aten.__ior__.Scalar") is torch.ops.aten.__ior__.Scalar
    assert names.operator_name("torch.ops.aten.__rshift__.Tensor", "call target") == "torch.ops.aten.__rshift__.Tensor"
    for target in ("torch.ops.aten.__class__.default", "torch.ops.other.__and__.Tensor",
                   "torch.ops.aten.__and__.__call__", "torch.ops.aten.__and__"):
        with pytest.raises(SerializeError, match=r"is not an operator name"):
            names.operator_name(target, "call target")
