"""The corpus of exported programs the tests run through pt2serde and PyTorch.

Each :class:`Program` builds an ``nn.Module`` and example inputs; :func:`exported`
exports it (cached per process) in one of two forms:

* ``"export"``: what ``torch.export.export`` returns (training / pre-dispatch IR);
* ``"decomposed"``: the same program after ``run_decompositions()`` (core ATen IR).

``CORPUS`` holds our own programs plus every SUPPORTED ``torch._export.db`` example
(``exportdb_<name>``). ``features`` lists what a program exercises; the coverage test
checks that every feature of the serializer's scope appears somewhere.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import math
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.export import Dim

__all__ = ["Program", "CORPUS", "FORMS", "exported", "program", "corpus_ids"]

FORMS = ("export", "decomposed")


@dataclass(frozen=True)
class Program:
    name: str
    build: Callable[[], tuple]  # -> (module, args) or (module, args, kwargs)
    dynamic_shapes: Any = None
    strict: bool = False
    features: tuple[str, ...] = ()
    forms: tuple[str, ...] = FORMS
    # Custom exporter: (module, args, kwargs, program) -> ExportedProgram (replaces export()).
    exporter: Callable | None = None
    # Programs whose eager outputs cannot be compared after a round trip (e.g. random ops).
    compare_outputs: bool = True
    # Extra setup needed before export/serialize/deserialize (e.g. loading a test library).
    # Called once per ``exported()`` call: it must be idempotent.
    setup: Callable[[], None] | None = None
    # A context-manager factory active while exporting *and* decomposing (config patches).
    context: Callable[[], Any] | None = None
    # Why PyTorch 2.13's own serializer cannot serialize this program (None: it can).
    # Such programs are left out of the oracle comparison; tests/bridge/test_beyond_pytorch.py
    # pins what pt2serde writes for them instead.
    oracle_unsupported: str | None = None
    # The first PyTorch release whose serializer can (then the oracle comparison applies there).
    oracle_supported_from: tuple[int, int] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def oracle_can(self) -> bool:
        """Whether the running PyTorch's own serializer can serialize this program."""
        if self.oracle_unsupported is None:
            return True
        return self.oracle_supported_from is not None and TORCH_RELEASE >= self.oracle_supported_from

    def inputs(self) -> tuple[torch.nn.Module, tuple, dict]:
        built = self.build()
        module, args = built[0], built[1]
        kwargs = built[2] if len(built) > 2 else {}
        return module, args, kwargs


CORPUS: dict[str, Program] = {}
#: the running PyTorch release, (major, minor)
TORCH_RELEASE = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])


def program(name: str | None = None, **options):
    """Register a builder function as a corpus program."""

    def register(fn):
        pname = name or fn.__name__
        if pname in CORPUS:
            raise ValueError(f"duplicate corpus program {pname}")
        CORPUS[pname] = Program(name=pname, build=fn, **options)
        return fn

    return register


def corpus_ids(forms: tuple[str, ...] = FORMS, *, oracle: bool | None = None) -> list[tuple[str, str]]:
    """(name, form) pairs of the corpus.

    ``oracle=True``: only programs PyTorch's serializer can serialize; ``oracle=False``:
    only those it cannot (``Program.oracle_unsupported``); ``None``: all.
    """
    return [
        (name, form)
        for name, p in CORPUS.items()
        for form in forms
        if form in p.forms and (oracle is None or oracle == p.oracle_can)
    ]


@functools.cache
def exported(name: str, form: str) -> torch.export.ExportedProgram:
    """The program ``name`` exported in ``form`` (cached: treat the result as read-only)."""
    p = CORPUS[name]
    if p.setup is not None:
        p.setup()
    with p.context() if p.context is not None else contextlib.nullcontext():
        if form == "decomposed":
            return exported(name, "export").run_decompositions()
        module, args, kwargs = p.inputs()
        if p.exporter is not None:
            return p.exporter(module, args, kwargs, p)
        return torch.export.export(module, args, kwargs, dynamic_shapes=p.dynamic_shapes, strict=p.strict)


# ===================================================================== programs


@program(features=("linear", "parameter", "user_input", "user_output", "nn_module_stack"))
def mlp():
    m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    return m, (torch.randn(3, 8),)


@program(strict=True, features=("strict", "source_fn_stack", "stack_trace"))
def strict_mlp():
    m = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh())
    return m, (torch.randn(2, 8),)


class _ConvBN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)

    def forward(self, x):
        return torch.nn.functional.max_pool2d(self.bn(self.conv(x)), 2)


@program(features=("buffer", "conv", "multiple_outputs"))
def conv_bn_eval():
    return _ConvBN().eval(), (torch.randn(2, 3, 8, 8),)


@program(features=("buffer_mutation", "multiple_outputs"))
def conv_bn_train():
    return _ConvBN().train(), (torch.randn(2, 3, 8, 8),)


class _Dyn(torch.nn.Module):
    def forward(self, x, y):
        return (x @ y.t()).view(x.shape[0], -1) * x.shape[0]


@program(
    dynamic_shapes={"x": {0: Dim("batch", min=2, max=64)}, "y": None},
    features=("dynamic_shapes", "range_constraints", "sym_int", "sym_size"),
)
def dynamic_batch():
    return _Dyn(), (torch.randn(4, 5), torch.randn(3, 5))


class _Unbounded(torch.nn.Module):
    def forward(self, x):
        return x.sum(0) + x.shape[0]


@program(dynamic_shapes={"x": {0: Dim("n")}}, features=("infinite_range",))
def unbounded_dim():
    return _Unbounded(), (torch.randn(5, 3),)


class _Split(torch.nn.Module):
    def forward(self, x):
        a, b, c = torch.split(x, 2)
        m, v = torch.var_mean(x, 1)
        return a + 1, c, m


@program(features=("tensor_list_output", "unused_output", "multiple_outputs"))
def split_and_var_mean():
    return _Split(), (torch.arange(12.0).reshape(6, 2),)


class _Scalars(torch.nn.Module):
    def forward(self, x):
        x = torch.ops.aten.add.Scalar(x, math.inf)
        x = torch.ops.aten.add.Scalar(x, -math.inf)
        x = torch.ops.aten.mul.Scalar(x, 1j)
        return torch.ops.aten.add.Scalar(x, math.nan)


@program(features=("nonfinite_scalar", "complex_scalar"))
def nonfinite_scalars():
    return _Scalars(), (torch.randn(3, 2),)


class _ArgKinds(torch.nn.Module):
    def forward(self, x, idx):
        y = x.to(torch.float64).contiguous(memory_format=torch.channels_last)
        z = torch.div(x, 3, rounding_mode="floor")
        w = torch.ones(2, 2, dtype=torch.float16, device="cpu")
        g = x[:, None, idx]
        return y, z, w, g, torch.nn.functional.gelu(x, approximate="tanh")


@program(features=("scalar_type", "memory_format", "string", "device", "optional_tensors"))
def argument_kinds():
    return _ArgKinds(), (torch.randn(2, 3, 4, 5), torch.tensor([0, 2]))


class _Cond(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda t: self.lin(t).sin(), lambda t: t.cos(), (x,))


@program(features=("cond", "subgraph"))
def cond_branches():
    return _Cond(), (torch.randn(3, 4),)


class _Constants(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.table = torch.arange(8.0)[:4]
        self.register_buffer("scratch", torch.ones(3), persistent=False)

    def forward(self, x):
        return x + self.table[: x.shape[0]] + self.scratch.sum()


@program(features=("tensor_constant", "non_persistent_buffer", "storage_offset"))
def lifted_constants():
    return _Constants(), (torch.randn(4),)


class _InputMutation(torch.nn.Module):
    def forward(self, x, y):
        x.add_(1)
        return x * y


@program(features=("user_input_mutation",))
def input_mutation():
    return _InputMutation(), (torch.randn(3), torch.randn(3))


class _ConstInputs(torch.nn.Module):
    def forward(self, x, scale: float, name: str, flag: bool, n: int, nothing=None):
        return x * scale * n if flag else x


@program(features=("constant_input", "constant_output"))
def constant_inputs():
    return _ConstInputs(), (torch.randn(2), 2.5, "tag", True, 3, None)


class _ConstOutputs(torch.nn.Module):
    def forward(self, x):
        return x + 1, None, 1024, 2.5, True


@program(features=("constant_output",))
def constant_outputs():
    return _ConstOutputs(), (torch.ones(3),)


# ============================================================ coverage corpus
#
# Small programs, each aimed at a few wire forms of the format (node kinds, Argument
# members, output shapes, schema matching, metadata, higher-order ops, signature kinds,
# range constraints, dtypes). ``features`` uses the names checked by
# tests/repo/test_corpus_coverage.py; tags that can be seen on the wire are verified there
# against the documents pt2serde writes.

# ---------------------------------------------------------------- shared setup

_TEST_NS = "pt2serde_test"
_LIBS: list = []  # keeps the torch.library.Library objects alive


@functools.cache
def _custom_ops() -> None:
    """Define the ``pt2serde_test`` operator library (idempotent)."""
    lib = torch.library.Library(_TEST_NS, "DEF")
    _LIBS.append(lib)

    def define(schema: str, impl: Callable, fake: Callable | None = None) -> None:
        name = schema.split("(", 1)[0]
        lib.define(schema)
        lib.impl(name, impl, "CompositeExplicitAutograd")
        torch.library.register_fake(f"{_TEST_NS}::{name}", fake or impl, lib=lib)

    define("grid_sum(Tensor[][] rows) -> Tensor",
           lambda rows: torch.stack([torch.stack([t.sum() for t in row]).sum() for row in rows]))
    define("named_sum(Dict(str, Tensor) parts) -> Tensor",
           lambda parts: torch.stack([v.sum() for v in parts.values()]).sum())
    define("with_int_lists(Tensor x, int[][] groups) -> Tensor", lambda x, groups: x.clone())
    define("with_float_lists(Tensor x, float[][] weights) -> Tensor", lambda x, weights: x.clone())
    define("labelled(Tensor x, str[] labels, bool[] flags) -> Tensor", lambda x, labels, flags: x.clone())
    define("maybe_pair(Tensor x) -> (Tensor, Tensor?)", lambda x: (x + 1, None))
    define("head_and_rest(Tensor x) -> (Tensor, Tensor[])", lambda x: (x + 1, [x * 2, x * 3]))

    def scale_(x, factor):
        x.mul_(factor)

    define("scale_(Tensor(a!) x, float factor) -> ()", scale_, lambda x, factor: None)
    define("journal(Tensor x) -> Tensor", lambda x: x.clone())
    define(
        "options(Tensor x, Tensor? w=None, int[]? dims=None, Scalar s=1, ScalarType? dtype=None, "
        "Device? device=None, Layout? layout=None, MemoryFormat? fmt=None, str? mode=None, *, "
        "float alpha=1.0, bool flag=False) -> Tensor",
        lambda x, w=None, dims=None, s=1, dtype=None, device=None, layout=None, fmt=None, mode=None,
        alpha=1.0, flag=False: x.clone(),
    )
    define("stats(Tensor x) -> (int, float, bool)", lambda x: (3, 2.5, True))
    define("pieces(Tensor x) -> Tensor[]", lambda x: [x + 1, x + 2, x + 3])
    define("two_lists(Tensor x) -> (Tensor[], Tensor[])", lambda x: ([x + 1, x + 2], [x * 3]))

    from torch._higher_order_ops.effects import _EffectType, _register_effectful_op

    try:
        _register_effectful_op(f"{_TEST_NS}::journal", _EffectType.ORDERED)
    except (AssertionError, TypeError):  # releases before 2.13 take the op overload itself
        _register_effectful_op(getattr(torch.ops, _TEST_NS).journal.default, _EffectType.ORDERED)


@functools.cache
def _torchbind() -> None:
    from torch.testing._internal.torchbind_impls import init_torchbind_implementations

    init_torchbind_implementations()


_OPS = torch.ops.pt2serde_test


# ------------------------------------------------------------------ node kinds


class _Scale2(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2


@program(features=("placeholder_tensor", "output_single", "single_output", "as_tensor", "as_int",
                   "user_input", "user_output"))
def single_tensor_return():
    return _Scale2(), (torch.randn(3, 4),)


class _SymIntInput(torch.nn.Module):
    def forward(self, x, n):
        return x * n, torch.ones(n, 2)


@program(dynamic_shapes={"x": None, "n": Dim.DYNAMIC},
         features=("placeholder_symint", "as_sym_int", "as_sym_ints", "output_multiple"))
def symint_user_input():
    return _SymIntInput(), (torch.randn(3), 4)


class _LiteralInputs(torch.nn.Module):
    def forward(self, x, k: int, scale: float, flag: bool, mode: str, nothing=None):
        y = x * scale + k
        if flag and mode == "double" and nothing is None:
            y = y * 2
        return y


@program(features=("placeholder_constant", "constant_input"))
def literal_user_inputs():
    return _LiteralInputs(), (torch.randn(3), 2, 0.5, True, "double", None)


class _WithTorchBind(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.counter = torch.classes._TorchScriptTesting._Foo(3, 4)

    def forward(self, x):
        a = self.counter.add_tensor(x)
        b = torch.ops._TorchScriptTesting.takes_foo(self.counter, x)
        return a + b


@program(setup=_torchbind,
         features=("placeholder_custom_obj", "as_custom_obj", "custom_obj", "call_torchbind",
                   "with_effects", "token", "token_output_spec", "as_operator", "as_string"))
def torchbind_attribute():
    return _WithTorchBind(), (torch.randn(2, 3),)


class _CondWithParam(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 3)

    def forward(self, x):
        def hit(t):
            return self.proj(t).relu()

        def miss(t):
            return t - 1

        return torch.cond(x.mean() > 0, hit, miss, (x,))


@program(features=("get_attr_subgraph", "as_graph", "cond", "parameter", "as_tensors"))
def cond_get_attr_subgraph():
    return _CondWithParam(), (torch.randn(2, 3),)


class _TupleReturn(torch.nn.Module):
    def forward(self, x):
        values, indices = torch.topk(x, 2)
        return values.exp(), indices, x.mean(1)


@program(features=("output_multiple", "multi_output"))
def tuple_return_topk():
    return _TupleReturn(), (torch.randn(3, 5),)


class _LayerNormMax(torch.nn.Module):
    def forward(self, x):
        normed = torch.nn.functional.layer_norm(x, (4,))
        best, where = torch.max(normed, dim=1)
        return best, where


@program(features=("multi_output", "unused_outputs"))
def layer_norm_and_max():
    return _LayerNormMax(), (torch.randn(3, 4),)


class _VarMeanHalf(torch.nn.Module):
    def forward(self, x):
        var, mean = torch.var_mean(x, dim=0, correction=0)
        return mean + 1


@program(features=("unused_outputs", "multi_output"))
def var_mean_one_unused():
    return _VarMeanHalf(), (torch.randn(4, 3),)


class _DropTheList(torch.nn.Module):
    def forward(self, x):
        head, rest = _OPS.head_and_rest(x)
        return head * 2


@program(setup=_custom_ops, features=("unused_outputs", "list_output"))
def custom_list_output_dropped():
    return _DropTheList(), (torch.randn(3),)


class _SplitFamily(torch.nn.Module):
    def forward(self, x):
        a, b = torch.split(x, [1, 3], dim=0)
        rows = torch.unbind(x, dim=1)
        chunks = torch.chunk(x, 2, dim=1)
        return a + b.sum(0), rows[0] * rows[2], torch.cat(chunks[::-1], dim=1)


@program(features=("list_output", "as_tensors", "as_ints"))
def split_unbind_chunk():
    return _SplitFamily(), (torch.randn(4, 4),)


class _MaybePair(torch.nn.Module):
    def forward(self, x):
        value, missing = _OPS.maybe_pair(x)
        return value


@program(setup=_custom_ops, features=("none_output",))
def custom_optional_none_output():
    return _MaybePair(), (torch.randn(3),)


class _Prints(torch.nn.Module):
    def forward(self, x):
        torch.ops.aten._print("pt2serde says hi")
        return x.cos()


@program(features=("token_output", "with_effects", "token", "token_output_spec", "as_operator"))
def print_side_effect():
    return _Prints(), (torch.randn(3),)


class _Journal(torch.nn.Module):
    def forward(self, x):
        y = _OPS.journal(x + 1)
        z = _OPS.journal(y * 2)
        return y, z


@program(setup=_custom_ops, features=("token_output", "with_effects", "token", "token_output_spec"))
def effectful_custom_op():
    return _Journal(), (torch.randn(3),)


class _SizesOut(torch.nn.Module):
    def forward(self, x):
        return x + 1, x.shape[0], x.shape[1] * 2


@program(dynamic_shapes={"x": {0: Dim("rows"), 1: Dim("cols")}},
         features=("sym_output", "as_sym_int", "infinite_range"))
def symint_user_outputs():
    return _SizesOut(), (torch.randn(3, 4),)


class _FloatOut(torch.nn.Module):
    def forward(self, x, t):
        f = t.item()
        return x * f, f * 0.5


@program(features=("sym_output", "as_sym_float", "as_float"))
def symfloat_user_output():
    return _FloatOut(), (torch.randn(3), torch.tensor(1.25))


class _TopkTwice(torch.nn.Module):
    def forward(self, x):
        values, indices = torch.topk(x, 2)
        return values * 2, indices + 1, values - 1


def _duplicate_getitem_exporter(module, args, kwargs, p):
    """Export, then route one user of a getitem through a second getitem on the same index."""
    ep = torch.export.export(module, args, kwargs)
    graph = ep.graph
    first = next(
        n for n in graph.nodes
        if n.op == "call_function" and n.target is operator.getitem and n.args[1] == 0
        and len(n.users) >= 2
    )
    last_user = list(first.users)[-1]
    with graph.inserting_after(first):
        duplicate = graph.node_copy(first)
    last_user.replace_input_with(first, duplicate)
    ep.graph_module.recompile()
    return ep


@program(exporter=_duplicate_getitem_exporter, features=("duplicate_getitem", "multi_output"))
def duplicate_getitem():
    return _TopkTwice(), (torch.randn(4, 6),)


# ----------------------------------------------------------- Argument members


class _OptionalIndex(torch.nn.Module):
    def forward(self, x, idx):
        picked = x[:, None, idx]
        put = x.clone()
        put[:, idx] = 0.0
        return picked, put


@program(features=("as_optional_tensors",))
def optional_tensor_index():
    return _OptionalIndex(), (torch.randn(3, 5), torch.tensor([0, 4, 1]))


class _Literals(torch.nn.Module):
    def forward(self, x):
        y = torch.clamp(x * 2.5 + 3, min=-1.0, max=4.5)
        s = y.sum(dim=[0, 1], keepdim=True)
        m = torch.amax(y, dim=[1], keepdim=False)
        return s, m


@program(features=("as_int", "as_ints", "as_float", "as_bool"))
def int_float_bool_literals():
    return _Literals(), (torch.randn(2, 3),)


class _Upsample(torch.nn.Module):
    def forward(self, x):
        a = torch.nn.functional.interpolate(x, scale_factor=(2.0, 1.5), mode="nearest")
        b = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return a, b


@program(features=("as_floats", "as_none", "as_bool"))
def interpolate_scale_factors():
    return _Upsample(), (torch.randn(1, 2, 4, 4),)


class _StringArgs(torch.nn.Module):
    def forward(self, x, y):
        q = torch.div(x, y, rounding_mode="trunc")
        g = torch.nn.functional.gelu(x, approximate="tanh")
        e = torch.einsum("ij,jk->ik", x, y.t())
        return q, g, e


@program(features=("as_string",))
def string_arguments():
    return _StringArgs(), (torch.randn(3, 4), torch.rand(3, 4) + 1)


class _Labelled(torch.nn.Module):
    def forward(self, x):
        return _OPS.labelled(x, ["alpha", "beta", ""], [True, False, True])


@program(setup=_custom_ops, features=("as_strings", "as_bools"))
def custom_string_and_bool_lists():
    return _Labelled(), (torch.randn(3),)


class _SymView(torch.nn.Module):
    def forward(self, x):
        b = x.shape[0]
        flat = x.reshape(b, -1)
        grown = flat.unsqueeze(1).expand(b, 2, flat.shape[1])
        return flat.view(b * flat.shape[1]), grown.new_zeros(b, 3)


@program(dynamic_shapes={"x": {0: Dim("batch", max=128)}},
         features=("as_sym_ints", "as_sym_int", "bounded_range"))
def symbolic_view_sizes():
    return _SymView(), (torch.randn(4, 2, 3),)


class _ItemFloat(torch.nn.Module):
    def forward(self, x, t):
        f = t.item()
        return x * f + f


@program(features=("as_sym_float",))
def sym_float_argument():
    return _ItemFloat(), (torch.randn(3), torch.tensor(0.75))


class _ForeachSymFloats(torch.nn.Module):
    def forward(self, x, y, t):
        return torch._foreach_mul([x, y], [t[0].item(), t[1].item()])


@program(features=("as_sym_floats", "list_output"))
def sym_float_list_foreach():
    return _ForeachSymFloats(), (torch.randn(3), torch.randn(2), torch.tensor([1.5, -2.0]))


class _SymBoolCheck(torch.nn.Module):
    def forward(self, x, y):
        torch._check(x.shape[0] + y.shape[0] > 3)
        n = torch.sym_ite(x.shape[0] > y.shape[0], x.shape[0], y.shape[0])
        return torch.zeros(n)


@program(dynamic_shapes={"x": {0: Dim("nx")}, "y": {0: Dim("ny")}}, features=("as_sym_bool", "as_sym_int"))
def sym_bool_check_and_ite():
    return _SymBoolCheck(), (torch.randn(5), torch.randn(3))


class _ForeachSymBools(torch.nn.Module):
    def forward(self, x, y):
        return torch._foreach_add([x, y], [x.shape[0] > 2, y.shape[0] > 5])


@program(dynamic_shapes={"x": {0: Dim("fx")}, "y": {0: Dim("fy")}}, features=("as_sym_bools",))
def sym_bool_list_foreach():
    return _ForeachSymBools(), (torch.randn(3), torch.randn(6))


class _Enums(torch.nn.Module):
    def forward(self, x):
        z = torch.zeros(2, 3, dtype=torch.float64, layout=torch.strided, device="cpu")
        cl = x.contiguous(memory_format=torch.channels_last)
        e = torch.empty_like(x, memory_format=torch.preserve_format).fill_(1.0)
        return z, cl + e, x.to(torch.int16)


@program(features=("as_scalar_type", "as_memory_format", "as_layout", "as_device"))
def enum_arguments():
    return _Enums(), (torch.randn(1, 2, 3, 3),)


class _ComplexMath(torch.nn.Module):
    def forward(self, z):
        return z * (2 - 3j) + 1j


@program(features=("as_complex", "dtypes"))
def complex_scalars():
    return _ComplexMath(), (torch.randn(3, dtype=torch.complex64),)


class _Grid(torch.nn.Module):
    def forward(self, a, b, c):
        return _OPS.grid_sum([[a, b], [c], [b, c, a]])


@program(setup=_custom_ops, features=("as_nested_tensors",))
def custom_nested_tensor_lists():
    return _Grid(), (torch.randn(2), torch.randn(3), torch.randn(4))


class _NamedSum(torch.nn.Module):
    def forward(self, a, b):
        return _OPS.named_sum({"first": a, "second": b * 2})


# run_decompositions() in PyTorch 2.13 cannot retrace a Dict(str, Tensor) argument
# (AttributeError: 'Tensor' object has no attribute 'constant'), so export form only.
@program(setup=_custom_ops, forms=("export",), features=("as_string_to_argument",))
def custom_dict_argument():
    return _NamedSum(), (torch.randn(2), torch.randn(3))


class _Hinted(torch.nn.Module):
    def forward(self, x):
        def body(t):
            return t.sin() * 3

        return torch._higher_order_ops.hints_wrapper(
            body, (x,), {}, hints={"unroll": 2, "label": "inner", "fast": True, "ratio": 0.5}
        )


@program(features=("hints_wrapper", "as_string_to_argument", "as_graph"))
def hints_wrapper_region():
    return _Hinted(), (torch.randn(2, 3),)


class _FloatLists(torch.nn.Module):
    def forward(self, x):
        return _OPS.with_float_lists(x, [[0.5, 1.5], [2.25], [-1.0, 0.0, 3.5]])


@program(setup=_custom_ops, features=("as_float_lists",))
def custom_float_lists():
    return _FloatLists(), (torch.randn(3),)


class _IntLists(torch.nn.Module):
    def forward(self, x):
        return _OPS.with_int_lists(x, [[0, 1], [2], [3, 4, 5]])


@program(setup=_custom_ops, features=("as_int_lists",),
         # PyTorch 2.13 raises SerializeError ("Unsupported list/tuple argument type") on
         # lists of int lists: its serializer only recognises *tuples* of ints there.
         oracle_unsupported="SerializeError on int[][] arguments (lists of int lists)",
         oracle_supported_from=(2, 14))
def custom_int_lists():
    return _IntLists(), (torch.randn(3),)


class _EmptyLists(torch.nn.Module):
    def forward(self, x):
        return _OPS.with_float_lists(_OPS.with_int_lists(x, []), [])


@program(setup=_custom_ops, features=("as_int_lists", "as_float_lists"),
         # PyTorch 2.13 raises SerializeError ("Empty list with type int[] nyi.") on an
         # empty int[][] / float[][] argument.
         oracle_unsupported="SerializeError on empty int[][] / float[][] arguments",
         oracle_supported_from=(2, 14))
def custom_empty_nested_lists():
    return _EmptyLists(), (torch.randn(3),)


class _NonFinite(torch.nn.Module):
    def forward(self, x, mask):
        lo = torch.clamp(x, min=-math.inf, max=math.inf)
        hidden = x.masked_fill(mask, -math.inf)
        gaps = torch.full((2,), math.nan)
        return lo, hidden.softmax(-1), gaps, torch.nan_to_num(x, nan=0.0, posinf=math.inf)


@program(features=("inf", "-inf", "nan", "as_float"))
def nonfinite_literals():
    return _NonFinite(), (torch.randn(2, 3), torch.tensor([[True, False, False], [False, True, False]]))


# ------------------------------------------------------------- schema matching


class _SearchSorted(torch.nn.Module):
    def forward(self, edges, values):
        right = torch.searchsorted(edges, values, side="right")
        left32 = torch.searchsorted(edges, values, out_int32=True)
        return right, left32


@program(features=("defaulted_kwargs", "kwarg_only"))
def searchsorted_kwargs():
    return _SearchSorted(), (torch.tensor([0.0, 1.0, 2.5, 4.0]), torch.tensor([0.5, 2.5, 9.0]))


class _LinearPositional(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(4, 3))
        self.bias = torch.nn.Parameter(torch.randn(4))

    def forward(self, x):
        y = torch.nn.functional.linear(x, self.weight, self.bias)
        return y + torch.full((4,), 0.5, dtype=torch.float32)


@program(features=("positional_default", "kwarg_only", "parameter"))
def linear_positional_bias():
    return _LinearPositional(), (torch.randn(2, 3),)


# -------------------------------------------------------------------- metadata


class _Leaf(torch.nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


class _OddNames(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_module("a[(1)]", _Leaf(2.0))
        self.register_module("c:[22]", _Leaf(3.0))
        self.register_module("d[1,2]", torch.nn.Sequential(_Leaf(0.5), torch.nn.Tanh()))
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.Sigmoid()
        )

    def forward(self, x):
        x = getattr(self, "a[(1)]")(x)
        x = getattr(self, "c:[22]")(x)
        x = getattr(self, "d[1,2]")(x)
        return self.layers[1:](x)


@program(features=("nn_module_stack", "stack_trace"))
def odd_module_names():
    return _OddNames(), (torch.randn(2, 4),)


class _StrictFunctional(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)

    def forward(self, x):
        return torch.nn.functional.silu(self.lin(x)) + torch.sigmoid(x)


@program(strict=True, features=("source_fn_stack", "torch_fn", "stack_trace", "nn_module_stack"))
def strict_source_fn():
    return _StrictFunctional(), (torch.randn(2, 3),)


class _Annotated(torch.nn.Module):
    def forward(self, x):
        with torch.fx.traceback.annotate({"stage": 1, "region": "body"}):
            y = x.sin() * 2
        return y.cos()


@program(strict=True, features=("custom_meta",))
def annotated_custom_meta():
    return _Annotated(), (torch.randn(3),)


class _Tagged(torch.nn.Module):
    def forward(self, x):
        return (x + 1).exp()


def _custom_meta_exporter(module, args, kwargs, p):
    """Non-strict export, then tag nodes and the module with ``meta["custom"]``."""
    ep = torch.export.export(module, args, kwargs)
    for i, node in enumerate(ep.graph.nodes):
        if node.op == "call_function":
            node.meta["custom"] = {"index": i, "owner": "pt2serde", "nested": {"ok": True, "w": [1, 2.5]}}
    ep.graph_module.meta["custom"] = {"model": "tagged", "version": 3}
    return ep


@program(exporter=_custom_meta_exporter, features=("custom_meta",))
def custom_meta_exporter():
    return _Tagged(), (torch.randn(3),)


class _Silu(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.silu(x) + torch.nn.functional.hardswish(x)


@program(features=("from_node", "stack_trace", "nn_module_stack", "torch_fn"))
def decomposition_from_node():
    return _Silu(), (torch.randn(4),)


# ------------------------------------------------------------- higher-order ops


class _MapRows(torch.nn.Module):
    def forward(self, xs, bias):
        from torch._higher_order_ops.map import map as hop_map

        return hop_map(lambda row, b: row.relu() + b, xs, bias)


@program(features=("map", "as_graph", "get_attr_subgraph"))
def map_over_rows():
    return _MapRows(), (torch.randn(4, 3), torch.randn(3))


class _Countdown(torch.nn.Module):
    def forward(self, x):
        from torch._higher_order_ops.while_loop import while_loop

        def cond(i, acc):
            return i.sum() < 4

        def body(i, acc):
            return i + 1, acc * 2 + 1

        # Tensor carries and int carries in separate loops: PyTorch 2.13 (and pt2serde)
        # cannot encode a carried list that mixes literal ints with tensors.
        steps, acc = while_loop(cond, body, (torch.zeros((), dtype=torch.int64), x))
        counts = while_loop(lambda a, b: a < 10, lambda a, b: (a + b, b + 1), (0, 1))
        return acc, steps, counts[0]


@program(features=("while_loop", "placeholder_symint", "output_single", "as_ints", "sym_output"))
def while_loop_counter():
    return _Countdown(), (torch.randn(3),)


class _SymCarries(torch.nn.Module):
    def forward(self, x):
        from torch._higher_order_ops.while_loop import while_loop

        n = x.shape[0]
        a, b = while_loop(lambda i, j: i < 16, lambda i, j: (i + 1, j + 2), (n, n * 2))
        return x.sum() + a + b


@program(dynamic_shapes={"x": {0: Dim("carry", min=2, max=8)}},
         features=("while_loop", "as_sym_ints", "bounded_range"))
def while_loop_symint_carries():
    return _SymCarries(), (torch.randn(3),)


class _ScanCumsum(torch.nn.Module):
    def forward(self, xs):
        def step(carry, x):
            nxt = carry + x
            return nxt, nxt * 2

        return torch._higher_order_ops.scan(step, torch.zeros(3), xs)


@program(features=("scan", "as_graph"))
def scan_running_sum():
    return _ScanCumsum(), (torch.randn(5, 3),)


class _AssocScan(torch.nn.Module):
    def forward(self, xs):
        from torch._higher_order_ops.associative_scan import associative_scan_op

        def combine(a, b):
            return a + b

        # The public wrapper lowers combine_mode="generic" to vmap'd ATen ops (and
        # "pointwise" needs CUDA), so call the operator itself to keep the HOP node.
        return associative_scan_op(combine, (xs,), ())


@program(features=("associative_scan", "as_graph"))
def associative_scan_op_direct():
    return _AssocScan(), (torch.randn(4, 3),)


class _Scaled(torch.nn.Module):
    def forward(self, x):
        y = x.clone()
        _OPS.scale_(y, 2.0)
        return y + 1


@program(setup=_custom_ops, features=("auto_functionalized_v2", "as_operator"))
def mutating_custom_op_v2():
    return _Scaled(), (torch.randn(3),)


@program(setup=_custom_ops,
         context=lambda: torch._export.config.patch(enable_auto_functionalized_v2_for_export=False),
         features=("auto_functionalized", "as_operator"))
def mutating_custom_op_v1():
    return _Scaled(), (torch.randn(3),)


@torch.compiler.nested_compile_region
def _shared_block(t):
    return t.sin() * 2 + t


class _Repeated(torch.nn.Module):
    def forward(self, x):
        return _shared_block(x) + _shared_block(x * 3)


@program(strict=True, features=("invoke_subgraph", "as_graph", "as_string"))
def invoke_subgraph_repeated():
    return _Repeated(), (torch.randn(2, 3),)


class _GradRegions(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)

    def forward(self, x):
        y = self.lin(x)
        with torch.no_grad():
            frozen = y * 2
        with torch.enable_grad():
            z = frozen.sin()
        return z + y


@program(features=("wrap_with_set_grad_enabled", "as_bool", "as_graph"))
def grad_mode_regions():
    return _GradRegions(), (torch.randn(2, 3),)


class _Autocast(torch.nn.Module):
    def forward(self, x, y):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = x @ y
        return z.float() + 1


@program(features=("wrap_with_autocast", "as_string", "as_scalar_type"))
def autocast_region():
    return _Autocast(), (torch.randn(3, 4), torch.randn(4, 2))


class _SymBoolPred(torch.nn.Module):
    def forward(self, x):
        return torch.cond(x.shape[0] > 4, lambda t: t.sum(0, keepdim=True), lambda t: t[:1] * 2, (x,))


@program(dynamic_shapes={"x": {0: Dim("rows", min=2, max=16)}},
         features=("cond", "as_sym_bool"))
def cond_sym_bool_predicate():
    return _SymBoolPred(), (torch.randn(6, 3),)


# ------------------------------------------------------- signature: inputs


class _State(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(3))
        self.register_buffer("kept", torch.arange(3.0))
        self.register_buffer("scratch", torch.ones(3), persistent=False)

    def forward(self, x):
        return x * self.weight + self.kept - self.scratch


@program(features=("parameter", "buffer", "non_persistent_buffer", "user_input"))
def parameters_and_buffers():
    return _State(), (torch.randn(3),)


class _PlainTensorAttr(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lookup = torch.tensor([1.0, -1.0, 2.0])

    def forward(self, x):
        return x + self.lookup + torch.tensor(5.0)


@program(features=("tensor_constant",))
def tensor_constant_attr():
    return _PlainTensorAttr(), (torch.randn(3),)


# ------------------------------------------------------ signature: outputs


class _Counter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        self.register_buffer("total", torch.zeros(3))

    def forward(self, x):
        self.calls.add_(1)
        self.total.copy_(self.total + x)
        return x * 2


@program(features=("buffer_mutation", "buffer"))
def buffer_mutation_counter():
    return _Counter(), (torch.randn(3),)


class _InPlaceInputs(torch.nn.Module):
    def forward(self, x, y):
        x.mul_(2)
        y[0] = 7.0
        return x + y


@program(features=("user_input_mutation",))
def user_input_mutation_inplace():
    return _InPlaceInputs(), (torch.randn(3), torch.randn(3))


class _ParamUpdate(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))

    def forward(self, x):
        with torch.no_grad():
            self.w.add_(0.5)
        return x * self.w


@program(features=("parameter_mutation", "parameter"))
def parameter_mutation():
    return _ParamUpdate(), (torch.randn(3),)


class _Regressor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)

    def forward(self, x, target):
        pred = self.norm(self.lin(x))
        return (torch.nn.functional.mse_loss(pred, target),)


def _joint_exporter(module, args, kwargs, p):
    """Forward + backward graph of a loss-returning module (loss and gradient outputs)."""
    from torch.export.experimental import _export_forward_backward

    ep = _export_forward_backward(torch.export.export(module, args, kwargs))
    # PyTorch 2.13 leaves GRADIENT_TO_USER_INPUT targets with the joint graph's flat
    # argument names ("arg<i>_1") instead of the placeholder names; its own serializer then
    # fails in canonicalize() with a KeyError. Point them at the placeholders so the
    # program is self-consistent.
    placeholders = [s.arg.name for s in ep.graph_signature.input_specs]
    for spec in ep.graph_signature.output_specs:
        if spec.kind == torch.export.graph_signature.OutputKind.GRADIENT_TO_USER_INPUT:
            if spec.target not in placeholders and spec.target.startswith("arg"):
                spec.target = placeholders[int(spec.target[3:].split("_")[0])]
    return ep


@program(exporter=_joint_exporter,
         # a joint (forward + backward) graph: module() cannot run it (its outputs are the loss
         # and gradients, not what the out_spec describes), so only the graph is compared
         compare_outputs=False,
         features=("loss_output", "gradient_to_parameter", "gradient_to_user_input", "parameter"))
def loss_and_gradients():
    return _Regressor(), (torch.randn(2, 4, requires_grad=True), torch.randn(2, 3))


# ------------------------------------------------------- range constraints


class _Bounded(torch.nn.Module):
    def forward(self, x, y):
        return x[:, :2] * y.sum()


@program(dynamic_shapes={"x": {0: Dim("m", min=3, max=20), 1: Dim("k", min=3)}, "y": {0: Dim("p", max=9)}},
         features=("bounded_range", "infinite_range"))
def bounded_dims():
    return _Bounded(), (torch.randn(4, 3), torch.randn(5))


class _Derived(torch.nn.Module):
    def forward(self, x, y):
        return x.reshape(2, -1) + y.repeat(2).reshape(2, -1)


_half = Dim("half", min=2, max=32)


@program(dynamic_shapes={"x": {0: 2 * _half}, "y": {0: _half}}, features=("derived_dim", "bounded_range"))
def derived_dims():
    return _Derived(), (torch.randn(8), torch.randn(4))


class _ItemSize(torch.nn.Module):
    def forward(self, x, n):
        k = n.item()
        torch._check(k >= 0)
        torch._check(k <= 10)
        return torch.zeros(k, 2) + x.sum()


@program(features=("unbacked_symint", "as_sym_bool", "as_sym_ints"))
def unbacked_item_check():
    return _ItemSize(), (torch.randn(3), torch.tensor(4))


class _NonZero(torch.nn.Module):
    def forward(self, x):
        idx = torch.nonzero(x > 0)
        return idx.float().sum(0), idx.shape[0]


@program(features=("unbacked_symint", "sym_output"))
def nonzero_unbacked():
    return _NonZero(), (torch.tensor([1.0, -2.0, 3.0, 0.0, 5.0]),)


class _Doubler(torch.nn.Module):
    def forward(self, x):
        return x + x


def _rational_range_exporter(module, args, kwargs, p):
    """Export, then widen the dim's range to rational bounds (serialized as ceil/floor)."""
    import sympy
    from torch.utils._sympy.value_ranges import ValueRanges

    ep = torch.export.export(module, args, kwargs, dynamic_shapes=p.dynamic_shapes)
    (symbol,) = list(ep.range_constraints)
    ep.range_constraints[symbol] = ValueRanges(sympy.Rational(5, 2), sympy.Rational(43, 6))
    return ep


@program(exporter=_rational_range_exporter, dynamic_shapes={"x": {0: Dim("r", min=2, max=10)}},
         # run_decompositions() rejects non-integer range bounds, so export form only.
         forms=("export",),
         # PyTorch 2.13 rounds the bounds with math.ceil/math.floor, which return sympy
         # Integers, and json.dumps then raises "Object of type Integer is not JSON serializable".
         oracle_unsupported="TypeError dumping ceil/floor-rounded rational range bounds",
         # module() of the original refuses its own rational bounds at run time
         compare_outputs=False,
         features=("rational_range",))
def rational_range():
    return _Doubler(), (torch.randn(4),)


# ------------------------------------------------------------ program level


class _Inner(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)

    def forward(self, x, scale):
        return self.lin(x) * scale, x.sum()


class _Outer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.sub = _Inner()
        self.other = torch.nn.Linear(3, 3)

    def forward(self, x):
        y, s = self.sub(x, 2.0)
        return self.other(y) + s


def _preserving_exporter(module, args, kwargs, p):
    return torch.export.export(module, args, kwargs, preserve_module_call_signature=("sub",))


@program(exporter=_preserving_exporter, features=("module_call_graph_preserved",))
def preserved_submodule_signature():
    return _Outer(), (torch.randn(2, 3),)


_Span = collections.namedtuple("_Span", ["start", "stop"])
_Stats = collections.namedtuple("_Stats", ["lo", "hi", "mean"])


@functools.cache
def _namedtuples() -> None:
    from torch.utils._pytree import _register_namedtuple

    _register_namedtuple(_Span, serialized_type_name="pt2serde_tests.Span")
    _register_namedtuple(_Stats, serialized_type_name="pt2serde_tests.Stats")


class _SpanStats(torch.nn.Module):
    def forward(self, span, x):
        y = x[..., :2] * span.start + span.stop
        return _Stats(lo=y.min(), hi=y.max(), mean=y.mean()), _Span(start=y, stop=x)


@program(setup=_namedtuples, features=("namedtuple_io",))
def namedtuple_io():
    return _SpanStats(), (_Span(torch.randn(2), torch.randn(2)), torch.randn(3, 2))


class _DictIO(torch.nn.Module):
    def forward(self, inputs, *, extra):
        total = inputs["a"] + inputs["b"]["c"] * extra
        return {"total": total, "parts": [inputs["a"], inputs["b"]["c"]]}


@program(features=("dict_io",))
def dict_io():
    return _DictIO(), ({"a": torch.randn(2), "b": {"c": torch.randn(2)}},), {"extra": torch.randn(2)}


def _custom_verifier_class():
    from torch._export.verifier import TrainingIRVerifier

    class _Pt2serdeDialectVerifier(TrainingIRVerifier):
        dialect = "PT2SERDE_TEST"

    return _Pt2serdeDialectVerifier


_CUSTOM_VERIFIER = functools.cache(_custom_verifier_class)


def _custom_verifier_exporter(module, args, kwargs, p):
    ep = torch.export.export(module, args, kwargs)
    ep._verifiers = [_CUSTOM_VERIFIER()]
    return ep


@program(exporter=_custom_verifier_exporter, features=("custom_verifier",))
def custom_verifier_dialect():
    return _Scale2(), (torch.randn(3),)


_ALL_DTYPES = (
    torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int16, torch.int32,
    torch.bool, torch.complex64, torch.float8_e4m3fn, torch.float8_e5m2, torch.uint16,
    torch.uint32, torch.uint64, torch.float8_e8m0fnu, torch.float64, torch.complex128,
)


class _DtypeBuffers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        for i, dt in enumerate(_ALL_DTYPES):
            self.register_buffer(f"buf_{str(dt).split('.')[-1]}", torch.ones(2).to(dt))

    def forward(self, x):
        acc = x
        for b in self.buffers():
            acc = acc + (b.real if b.is_complex() else b.to(torch.float32))
        return acc


@program(features=("dtypes", "buffer"))
def dtype_buffers():
    return _DtypeBuffers(), (torch.randn(2),)


class _DtypeCasts(torch.nn.Module):
    def forward(self, x, small, flags):
        return (
            x.to(torch.float8_e4m3fn), x.to(torch.float8_e5m2), x.to(torch.bfloat16),
            small.to(torch.uint32), small.to(torch.uint64), flags.logical_not(),
        )


@program(features=("dtypes", "as_scalar_type"))
def dtype_casts():
    return _DtypeCasts(), (torch.randn(3), torch.tensor([1, 2, 3], dtype=torch.int8), torch.tensor([True, False]))



# ------------------------------------------------------------ encoding edges


class _ExtremeLiterals(torch.nn.Module):
    def forward(self, x, n):
        return (
            x * 1e-300 + 1e16,
            x + (-0.0),
            torch.full((2,), 5e-324),
            n + 2**62,
            n.clamp(min=-(2**63), max=2**63 - 1),
            x * 0.1 + 1 / 3,
            x * 1.7976931348623157e308,
        )


@program(features=("as_float", "as_int", "float_repr"))
def extreme_literals():
    return _ExtremeLiterals(), (torch.randn(2), torch.tensor([1, 2]))


class _UnicodeNames(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_module("módulo", _Leaf(2.0))

    def forward(self, x):
        torch.ops.aten._print('héllo ✓ "q" back\\slash\n\ttab \x01 \u2028 😀')
        return getattr(self, "módulo")(x) + 1


@program(features=("as_string", "nn_module_stack", "token_output", "non_ascii"))
def unicode_strings():
    return _UnicodeNames(), (torch.randn(2),)


class _DeviceIndex(torch.nn.Module):
    def forward(self, x):
        return torch.ones(2, device=torch.device("cpu", 0)) + x.to("cpu:0")


@program(features=("as_device",))
def device_with_index():
    return _DeviceIndex(), (torch.randn(2),)


class _Aliased(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(2))
        self.register_buffer("b", torch.randn(2))

    def forward(self, x):
        y = x + 1
        return x, y, y, self.w, self.b


@program(features=("output_multiple", "user_output", "parameter", "buffer"))
def aliased_outputs():
    return _Aliased(), (torch.randn(2),)


class _Strided(torch.nn.Module):
    def forward(self, x, empty, scalar, channels_last):
        return (
            x.t().contiguous(), x[1:, ::2] * 2, x[:1].expand(3, 4) + 1, empty.sum(), scalar * 2,
            channels_last * 2, x.as_strided((2, 2), (1, 2), 1),
        )


@program(features=("tensor_meta_strides", "placeholder_tensor"))
def strided_tensor_meta():
    return _Strided(), (
        torch.randn(3, 4, requires_grad=True), torch.randn(0, 3), torch.tensor(2.0),
        torch.randn(1, 3, 2, 2).to(memory_format=torch.channels_last),
    )


class _MetaLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(x).relu()


@program(features=("meta_device", "parameter"))
def meta_device_module():
    return _MetaLinear().to("meta"), (torch.randn(2, 3, device="meta"),)


class _SymOps(torch.nn.Module):
    def forward(self, x, y):
        a, b = x.shape[0], y.shape[0]
        m = torch.sym_max(a, b)
        n = torch.sym_min(a, b)
        q = a // 2 + b % 3
        f = torch.sym_float(a) / 2.0
        r = torch.sym_int(f * 2)
        s = math.trunc(f)
        return torch.zeros(m + n + q + r + s), x * torch.sym_sqrt(a)


@program(dynamic_shapes={"x": {0: Dim("sa", min=2, max=64)}, "y": {0: Dim("sb", min=2, max=64)}},
         features=("as_sym_int", "as_sym_float", "sym_ops", "bounded_range"))
def python_sym_ops():
    return _SymOps(), (torch.randn(6), torch.randn(4))


class _SymBoolOut(torch.nn.Module):
    def forward(self, x, y):
        return x + 1, x.shape[0] == y.shape[0], torch.sym_not(x.shape[0] > 3)


@program(dynamic_shapes={"x": {0: Dim("ba")}, "y": {0: Dim("bb")}},
         features=("sym_output", "as_sym_bool"),
         # PyTorch 2.13's serialize_argument_spec raises AssertionError("TODO") on a
         # SymBool user output.
         oracle_unsupported="AssertionError('TODO') on a SymBool user output")
def symbool_user_output():
    return _SymBoolOut(), (torch.randn(3), torch.randn(4))


class _NestedHops(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.randn(3))

    def forward(self, xs):
        from torch._higher_order_ops.map import map as hop_map

        def body(row):
            return torch.cond(row.sum() > 0, lambda r: r * 2, lambda r: r - 1, (row,))

        def step(c, x):
            return c + x * self.p, c.sum() + x

        carry, ys = torch._higher_order_ops.scan(step, torch.zeros(3), xs)
        return hop_map(body, xs), carry, ys


@program(features=("map", "cond", "scan", "as_graph", "parameter"))
def nested_higher_order_ops():
    return _NestedHops(), (torch.randn(4, 3),)


class _CondThree(torch.nn.Module):
    def forward(self, x):
        a, b, c = torch.cond(
            x.sum() > 0, lambda t: (t + 1, t * 2, t - 3), lambda t: (t - 1, t / 2, t + 3), (x,)
        )
        return a + c


@program(features=("cond", "multi_output"))
def cond_three_outputs_one_unused():
    return _CondThree(), (torch.randn(3),)


class _IntKeyDict(torch.nn.Module):
    def forward(self, od, lst):
        return {1: od["a"] + lst[0], 2: lst[1] * 2}, [od["b"], (lst[0],)]


@program(features=("dict_io", "pytree_containers"))
def int_key_dict_io():
    return _IntKeyDict(), (
        collections.OrderedDict(a=torch.randn(2), b=torch.randn(2)), [torch.randn(2), torch.randn(2)],
    )


class _StateInCond(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("buf", torch.ones(3))
        self.c = torch.tensor([1.0, 2.0, 3.0])

    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda t: t + self.c, lambda t: t * self.buf, (x,))


@program(features=("cond", "tensor_constant", "buffer"))
def lifted_state_in_cond():
    return _StateInCond(), (torch.randn(3),)


class _Options(torch.nn.Module):
    def forward(self, x, w):
        a = _OPS.options(x, w, [0], 2.5, torch.float32, torch.device("cpu"), torch.strided,
                         torch.contiguous_format, "fast", alpha=0.5, flag=True)
        b = _OPS.options(x, None, None, True, mode=None, flag=False)
        c = _OPS.options(x, s=3 + 4j)
        d = _OPS.options(x, dims=[], alpha=2)
        return a, b, c, d


@program(setup=_custom_ops,
         features=("defaulted_kwargs", "kwarg_only", "as_none", "as_complex", "as_scalar_type",
                   "as_device", "as_layout", "as_memory_format", "as_ints"))
def custom_optional_arguments():
    return _Options(), (torch.randn(3), torch.randn(3))


class _StatsOp(torch.nn.Module):
    def forward(self, x):
        n, f, b = _OPS.stats(x)
        return x * n + f, b


@program(setup=_custom_ops, features=("multi_output", "as_sym_int", "as_sym_float", "as_sym_bool"))
def custom_scalar_returns():
    return _StatsOp(), (torch.randn(3),)


class _ListReturns(torch.nn.Module):
    def forward(self, x):
        p = _OPS.pieces(x)
        l1, l2 = _OPS.two_lists(x)
        return p[0] + p[2], l2[0]


@program(setup=_custom_ops, features=("list_output", "unused_outputs"))
def custom_list_returns():
    return _ListReturns(), (torch.randn(3),)


# ===================================================================== ExportDB


def _exportdb_programs() -> None:
    from torch._export.db.case import SupportLevel
    from torch._export.db.examples import all_examples

    def exporter(module, args, kwargs, p):
        case = p.extra["case"]
        with torch._export.config.patch(use_new_tracer_experimental=True):
            return torch.export.export(
                case.model, case.example_args, case.example_kwargs,
                dynamic_shapes=case.dynamic_shapes, strict=True,
            )

    for case_name, case in sorted(all_examples().items()):
        if case.support_level != SupportLevel.SUPPORTED:
            continue
        pname = f"exportdb_{case_name}"
        CORPUS[pname] = Program(
            name=pname,
            build=lambda case=case: (case.model, case.example_args, case.example_kwargs),
            strict=True,
            features=("exportdb",),
            exporter=exporter,
            extra={"case": case},
        )


_exportdb_programs()


def matmul_view_module():
    """The spec's ``test_dynamic`` program (TestSerialize and TestDeserialize): a matmul and a
    view on a dynamic batch. Returns ``(module, inputs, dynamic_shapes)``."""

    class M(torch.nn.Module):
        def forward(self, a, b, c):
            d = (torch.matmul(a, b) + c) / 2
            return torch.cat([d.view(d.shape[0] * d.shape[1])] * 2)

    inputs = (torch.randn(2, 4), torch.randn(4, 7), torch.randn(2, 7))
    d0, d1 = Dim("dim0_ac"), Dim("dim1_b")
    shapes = {"a": {0: d0}, "b": {1: d1}, "c": {0: d0, 1: d1}}
    return M(), inputs, shapes
