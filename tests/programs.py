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

import functools
import math
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
    setup: Callable[[], None] | None = None
    extra: dict = field(default_factory=dict)

    def inputs(self) -> tuple[torch.nn.Module, tuple, dict]:
        built = self.build()
        module, args = built[0], built[1]
        kwargs = built[2] if len(built) > 2 else {}
        return module, args, kwargs


CORPUS: dict[str, Program] = {}


def program(name: str | None = None, **options):
    """Register a builder function as a corpus program."""

    def register(fn):
        pname = name or fn.__name__
        if pname in CORPUS:
            raise ValueError(f"duplicate corpus program {pname}")
        CORPUS[pname] = Program(name=pname, build=fn, **options)
        return fn

    return register


def corpus_ids(forms: tuple[str, ...] = FORMS) -> list[tuple[str, str]]:
    return [(name, form) for name, p in CORPUS.items() for form in forms if form in p.forms]


@functools.cache
def exported(name: str, form: str) -> torch.export.ExportedProgram:
    """The program ``name`` exported in ``form`` (cached: treat the result as read-only)."""
    p = CORPUS[name]
    if p.setup is not None:
        p.setup()
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
