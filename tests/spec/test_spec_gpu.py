"""The accelerator-only behaviours of the specification (PyTorch's test/export/test_serialize.py:
TestSerializeAccelerator, TestDeserializeAccelerator, TestSaveLoadAccelerator, and the older
copies' test_weight_sharing_gpu / test_triton_hop / test_device), checked against pt2serde.

Every test here needs a CUDA device (and the triton ones need triton): they carry the ``gpu``
marker and are meant to be deselected (``-m "not gpu"``) where there is no accelerator. They
are never skipped: run on a machine without one, they fail. The device-independent part of
weight sharing is also checked on CPU in test_spec_serialize.py.
"""

from __future__ import annotations


import pytest
import torch

import pt2serde
from artifacts import save_load
from pt2serde.schema import ArgumentKind

pytestmark = pytest.mark.gpu

DEVICE = "cuda"


def _storage_ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def test_weight_sharing():
    """Spec: TestSerializeAccelerator.test_weight_sharing (TestSerialize.test_weight_sharing_gpu).

    Accelerator constants where c1 is a row view of c2 keep one shared storage, on the
    accelerator, after save/load."""

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c2 = torch.ones(2, 4, device=DEVICE)
            self.c1 = self.c2[0, :]
            self.linear = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.linear(x) + self.c1 + self.c2

    m = M().to(DEVICE)
    inp = (torch.randn(2, 4, device=DEVICE),)
    ep = torch.export.export(m, inp)
    assert _storage_ptr(ep.constants["c1"]) == _storage_ptr(ep.constants["c2"])
    loaded = save_load(ep)
    c1, c2 = loaded.constants["c1"], loaded.constants["c2"]
    assert c1.device.type == DEVICE and c2.device.type == DEVICE
    assert _storage_ptr(c1) == _storage_ptr(c2)
    torch.testing.assert_close(loaded.module()(*inp), m(*inp))


def _triton_add():
    import triton
    import triton.language as tl
    from torch.library import wrap_triton

    @triton.jit
    def add_kernel(in_ptr0, in_ptr1, out_ptr, n_elements, fval, ival, BLOCK_SIZE: "tl.constexpr"):
        pid = tl.program_id(axis=0)
        offsets = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offsets < n_elements
        x = tl.load(in_ptr0 + offsets, mask=mask)
        y = tl.load(in_ptr1 + offsets, mask=mask)
        tl.store(out_ptr + offsets, x + y + fval + ival, mask=mask)

    def make(num_warps):
        def custom_add(x, y):
            out = torch.empty_like(x)
            n = out.numel()
            extra = {} if num_warps is None else {"num_warps": num_warps}
            wrap_triton(add_kernel)[lambda meta: (triton.cdiv(n, meta["BLOCK_SIZE"]),)](
                x, y, out, n, 3.14, 42, BLOCK_SIZE=16, **extra
            )
            return out

        class M(torch.nn.Module):
            def forward(self, x, y):
                return custom_add(x, y)

        return M()

    return make


@pytest.mark.parametrize("num_warps", [None, 8], ids=["default_warps", "autotune_warps"])
def test_triton_hop(num_warps):
    """Spec: TestSerializeAccelerator.test_triton_hop (TestSerialize.test_triton_hop) [triton].

    A triton_kernel_wrapper_functional node is written with 6 positional arguments (3
    tensors, the int, float and int scalars) and keyword arguments name, grid,
    output_indices and num_warps; its single output lists the written tensors. Reading it
    back is refused with "deserialize nyi"."""
    m = _triton_add()(num_warps).to(DEVICE)
    args = (torch.randn(3, device=DEVICE), torch.randn(3, device=DEVICE))
    ep = torch.export.export(m, args).run_decompositions(decompose_custom_triton_ops=False)
    torch.testing.assert_close(ep.module()(*args), m(*args))

    serialized = pt2serde.ExportedProgramSerializer().serialize(ep)
    nodes = [
        n for n in serialized.exported_program.graph_module.graph.nodes
        if n.target == "torch.ops.higher_order.triton_kernel_wrapper_functional"
    ]
    assert len(nodes) == 1
    node = nodes[0]
    positional = [i.arg for i in node.inputs if i.kind == ArgumentKind.POSITIONAL]
    keyword = {i.name: i.arg for i in node.inputs if i.kind == ArgumentKind.KEYWORD}
    assert len(positional) == 6
    assert all(a.type == "as_tensor" for a in positional[:3])
    assert positional[3].as_int == 3
    assert positional[4].as_float == pytest.approx(3.14, abs=1e-2)
    assert positional[5].as_int == 42
    assert {"name", "grid", "output_indices", "num_warps"} <= set(keyword)
    assert keyword["name"].as_string.rpartition("_")[0] == "add_kernel"
    assert keyword["grid"].as_ints == [1, 1, 1]
    assert keyword["output_indices"].as_ints == [2]
    assert keyword["num_warps"].as_int == (4 if num_warps is None else num_warps)
    for optional in ("num_cpu_threads", "shared_memory_bytes"):
        if optional in keyword:
            assert keyword[optional].as_int == 0
    assert len(node.outputs) == 1
    assert len(node.outputs[0].as_tensors) == len(keyword["output_indices"].as_ints)
    assert node.outputs[0].as_tensors[0].name == "getitem"

    with pytest.raises(
        pt2serde.SerializeError,
        match="deserialize nyi for torch._higher_order_ops.triton_kernel_wrap.triton_kernel_wrapper_functional",
    ):
        pt2serde.ExportedProgramDeserializer().deserialize(
            serialized.exported_program, serialized.state_dict, serialized.constants,
            serialized.example_inputs,
        )


def test_triton_constexpr_matching():
    """Spec: TestSerializeAccelerator.test_triton_constexpr_matching [triton].

    Finding the compiled kernel of a triton call whose constexpr arguments include a bool
    does not raise while serializing, and the node records the launch's num_warps."""
    import triton
    import triton.language as tl
    from torch.library import wrap_triton

    @triton.jit
    def scale_kernel(in_ptr, out_ptr, n_elements, BLOCK_SIZE: "tl.constexpr", DOUBLE: "tl.constexpr"):
        offsets = tl.program_id(axis=0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offsets < n_elements
        x = tl.load(in_ptr + offsets, mask=mask)
        if DOUBLE:
            x = x * 2
        tl.store(out_ptr + offsets, x, mask=mask)

    class M(torch.nn.Module):
        def forward(self, x):
            out = torch.empty_like(x)
            n = out.numel()
            wrap_triton(scale_kernel)[lambda meta: (triton.cdiv(n, meta["BLOCK_SIZE"]),)](
                x, out, n, BLOCK_SIZE=16, DOUBLE=True
            )
            return out

    x = torch.randn(8, device=DEVICE)
    ep = torch.export.export(M(), (x,)).run_decompositions(decompose_custom_triton_ops=False)
    torch.testing.assert_close(ep.module()(x), x * 2)
    doc = pt2serde.ExportedProgramSerializer().serialize(ep).exported_program
    node = next(
        n for n in doc.graph_module.graph.nodes
        if n.target == "torch.ops.higher_order.triton_kernel_wrapper_functional"
    )
    keyword = {i.name: i.arg for i in node.inputs if i.kind == ArgumentKind.KEYWORD}
    assert keyword["num_warps"].type == "as_int"


def test_device():
    """Spec: TestDeserializeAccelerator.test_device (TestDeserialize.test_device):
    a Conv2d, ReLU and mul-by-scalar model on the accelerator through check_graph."""
    from test_spec_deserialize import check_graph

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 16, 3, stride=1, bias=True)
            self.relu = torch.nn.ReLU()

        def forward(self, x):
            return self.relu(self.conv(x)) * 0.5

    m = M().to(DEVICE)
    loaded = check_graph(m, (torch.randn(2, 3, 16, 16, device=DEVICE),))
    for ep in loaded:
        assert all(t.device.type == DEVICE for t in ep.state_dict.values())


def test_save_load_accelerator_tensor():
    """Spec: TestSaveLoadAccelerator.test_save_load_accelerator_tensor:
    state-dict tensors reload on the accelerator's device type."""

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 4)
            self.register_buffer("steps", torch.zeros(4))

        def forward(self, x):
            return self.linear(x) + self.steps

    m = M().to(DEVICE)
    inp = (torch.randn(2, 4, device=DEVICE),)
    ep = torch.export.export(m, inp)
    loaded = save_load(ep)
    assert set(loaded.state_dict) == {"linear.weight", "linear.bias", "steps"}
    for name, t in loaded.state_dict.items():
        assert t.device.type == torch.device(DEVICE).type, name
        torch.testing.assert_close(t, ep.state_dict[name])
    torch.testing.assert_close(loaded.module()(*inp), m(*inp))
