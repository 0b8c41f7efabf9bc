"""Writing for older readers: ``save(..., target_schema=...)``.

These tests check what can be checked without the old releases: the document and the
layout each target gets, refusals naming the first unsupported feature, and that
pt2serde reads every target back. ``tools/check_older_readers.py`` runs the same archives
through the real PyTorch 2.8 / 2.9 releases (in throwaway venvs) and prints the matrix.
"""

import io
import json
import zipfile

import pytest
import torch

import pt2serde
from checks import outputs_close, run
from programs import CORPUS, exported
from pt2serde.format.upgrade import DOWN_STEPS, READERS

TARGETS = [(8, 20), (8, 14), (8, 8)]


def _unknown_to(target):
    """Argument / output-spec members and dtypes a reader of ``target`` does not know."""
    members, dtypes = set(), set()
    for lacks in DOWN_STEPS:
        if lacks.target >= target:
            members |= lacks.argument_members | lacks.output_spec_members
            dtypes |= lacks.scalar_types
    return members, dtypes


def _save(ep, target) -> bytes:
    buf = io.BytesIO()
    pt2serde.save(ep, buf, target_schema=target)
    return buf.getvalue()


def _document(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(z.read(next(n for n in z.namelist() if n.endswith("models/model.json"))))


def _walk(v):
    if isinstance(v, dict):
        yield v
        for x in v.values():
            yield from _walk(x)
    elif isinstance(v, list):
        for x in v:
            yield from _walk(x)


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"{t[0]}.{t[1]}")
@pytest.mark.parametrize("name", ["mlp", "conv_bn_train", "dynamic_batch", "cond_branches", "lifted_constants",
                                  "split_and_var_mean", "unbacked_item_check", "dtype_buffers", "complex_scalars",
                                  "custom_nested_tensor_lists"])
def test_target_document_uses_only_what_that_reader_knows(name, target):
    ep = exported(name, "export")
    try:
        data = _save(ep, target)
    except pt2serde.SerializeError as e:
        assert target != (8, 20), e
        assert " is not readable by PyTorch " in str(e) and " - at `$." in str(e)
        return
    doc = _document(data)
    assert doc["schema_version"] == {"major": target[0], "minor": target[1]}
    members, dtypes = _unknown_to(target)
    for obj in _walk(doc):
        assert not (len(obj) == 1 and members & obj.keys()), obj
        assert obj.get("dtype") not in dtypes and obj.get("as_scalar_type") not in dtypes
        if target < (8, 20) and "target" in obj and "outputs" in obj:
            assert "name" not in obj  # Node.name came with 8.20
    if target < (8, 14):
        assert "guards_code" not in doc
    loaded = pt2serde.load(io.BytesIO(data))
    if CORPUS[name].compare_outputs:
        outputs_close(run(ep, name), run(loaded, name))


def test_pytorch_2_8_layout_stores_whole_dicts():
    data = _save(exported("conv_bn_train", "export"), (8, 8))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = {n.split("/", 1)[1] for n in z.namelist()}
    assert {"data/weights/model.pt", "data/constants/model.pt", "models/model.json",
            "data/sample_inputs/model.pt"} <= names
    assert not any(n.endswith("_config.json") for n in names)


def test_pytorch_2_9_gets_whole_dict_weights_for_non_floating_parameters():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q = torch.nn.Parameter(torch.arange(6, dtype=torch.int8), requires_grad=False)
            self.w = torch.nn.Parameter(torch.ones(6))

        def forward(self, x):
            return x * self.q + self.w

    ep = torch.export.export(M(), (torch.ones(6),))
    for target, whole in (((8, 14), True), ((8, 20), False)):
        data = _save(ep, target)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert any(n.endswith("data/weights/model.pt") for n in z.namelist()) is whole
        loaded = pt2serde.load(io.BytesIO(data))
        assert isinstance(loaded.state_dict["q"], torch.nn.Parameter) and loaded.state_dict["q"].dtype == torch.int8
        outputs_close(ep.module()(torch.ones(6)), loaded.module()(torch.ones(6)))


def test_refusal_names_the_first_feature_and_where_it_is():
    ep = exported("complex_scalars", "export")
    _save(ep, (8, 14))  # 2.9 knows complex scalars
    with pytest.raises(pt2serde.SerializeError) as info:
        _save(ep, (8, 8))
    message = str(info.value)
    assert message.startswith("argument kind `as_complex` (added after schema 8.8) is not readable by PyTorch 2.8 "
                              "(schema 8.8): the program cannot be written for that release - at `$.graph_module.graph.nodes[")
    assert message.endswith(".as_complex`")


def test_refused_save_leaves_no_file(tmp_path):
    target = tmp_path / "model.pt2"
    target.write_bytes(b"previous contents")
    with pytest.raises(pt2serde.SerializeError, match="as_nested_tensors"):
        pt2serde.save(exported("custom_nested_tensor_lists", "export"), target, target_schema=(8, 14))
    assert target.read_bytes() == b"previous contents"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt2"]


def test_unknown_target_lists_what_can_be_written():
    with pytest.raises(pt2serde.SerializeError, match=r"cannot write schema 7\.3; pt2serde writes 8\.20 \(PyTorch "
                                                      r"2\.13, 2\.14\), 8\.14 \(PyTorch 2\.9\), 8\.8 \(PyTorch 2\.8\)"):
        pt2serde.save(exported("mlp", "export"), io.BytesIO(), target_schema=(7, 3))
    assert sorted(READERS) == sorted(TARGETS)


@pytest.mark.parametrize("name,where", [
    ("symbool_user_output", "user output of kind `as_sym_bool`"),
    ("custom_scalar_returns", "operator output of kind `as_sym_bool` in a tuple of outputs"),
])
def test_saving_what_no_pytorch_reader_handles_warns(name, where):
    with pytest.warns(UserWarning, match=f"pt2serde reads this archive back, but torch.export.load cannot: .*{where}"):
        data = _save(exported(name, "export"), (8, 20))
    pt2serde.load(io.BytesIO(data))
    with pytest.raises(Exception):  # and PyTorch indeed cannot
        torch.export.load(io.BytesIO(data))
