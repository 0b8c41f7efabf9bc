"""The rule for torchbind records: TorchScript custom-class objects read without unpickling (torch-free).

What PyTorch 2.13 writes for a ``torch._C.ScriptObject`` constant (``data/constants/custom_obj_<i>``
of an archive, a ``script_object`` blob of a ``SerializedArtifact`` payload) is
``torch._C._pickle_save(obj)``: a zip laid out like a ``torch.save`` file (``archive/data.pkl``,
``archive/data/<key>`` for each storage, ``archive/byteorder``, ``archive/version``) whose
``data.pkl`` is written by TorchScript's pickler (protocol 2)::

    GLOBAL '__torch__.torch.classes.<ns> <Name>'  EMPTY_TUPLE NEWOBJ  <state>  BUILD  STOP

where ``<state>`` is what the class's registered ``__getstate__`` returned. TorchScript writes
plain values with ordinary opcodes, typed lists through ``torch.jit._pickle.build_intlist`` /
``build_doublelist`` / ``build_boollist`` / ``build_tensorlist``, other lists and dicts wrapped in
``torch.jit._pickle.restore_type_tag(value, "<type>")``, and tensors as ``torch.save`` does
(``torch._utils._rebuild_tensor_v2`` of a persistent-id storage record, an empty ``OrderedDict``
of backward hooks).

:func:`record_globals` is the table such a pickle may name: the tensor globals of the
``torch.save`` reader it is given (the walker's :data:`~pt2serde.format.torchsave.WALK_GLOBALS`
here, the bridge's real-tensor builders at load), the ``torch.jit._pickle`` builders (each
checks its argument), and the class of the object: exactly one class per record, named
``__torch__.torch.classes.<ns>.<Name>`` with identifier ``ns`` and ``Name``; NEWOBJ of it makes a
:class:`TorchbindObject` (never an object of the file's choosing) and BUILD hands it its state
once. :func:`finish` then holds the result to the rule: one object at the root, its state made
only of None, bools, ints, floats, strings, bytes, tensors and lists, tuples and dicts of them,
bounded in depth and size (:mod:`.pickle_budget`). :func:`describe_torchbind` is the walk
``validate`` and ``load`` share (:func:`pt2serde.format.tensor_entries.payload_entries`); the
bridge (:mod:`pt2serde.bridge.torchbind`) reads the same table with real tensors, checks the
class is registered in the process and rebuilds the object through its own ``__setstate__``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from ..errors import SerializeError
from .pickle_budget import MAX_DEPTH, check_tree, printable, short, work_budget
from .pickle_globals import Global
from .torchsave import TensorInfo, describe_torch_save

__all__ = ["CLASS_MODULE", "LIBTORCH_NAMESPACES", "MAX_TYPE_TAG", "TorchbindObject", "class_problem", "describe_torchbind", "finish",
           "record_globals"]

CLASS_MODULE = "__torch__.torch.classes"  #: the module TorchScript names custom classes under
#: the namespaces of the torchbind classes libtorch registers itself (2.13, 2.14: quantized and
#: sparse packed weights, mkldnn/xnnpack contexts, c10d, RPC, profiling, ...): their C++
#: ``__setstate__`` trust the tensors they are given (``sparse.LinearPackedParamsBase`` with a
#: lying row pointer dies with SIGSEGV), so a file never rebuilds one without allow_pickle
LIBTORCH_NAMESPACES = frozenset({
    "_nnapi", "aten", "backendutils", "c10d", "dist_c10d", "dist_rpc", "mkldnn", "onednn", "profiling",
    "quantized", "rnn", "sparse", "xnnpack", "cuda", "metal", "vulkan", "_caffe2", "caffe2", "torch",
})
MAX_TYPE_TAG = 1024  #: longest type text ``restore_type_tag`` may carry
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}|_[A-Za-z0-9][A-Za-z0-9_]{0,126}")  # ASCII, no dunder start
_HOOKS = ("collections", "OrderedDict")  # each tensor's (empty) backward hooks
_REBUILD = ("torch._utils", "_rebuild_tensor_v2")


class TorchbindObject:
    """The object of a torchbind record as its pickle describes it: its class and its state.

    Made by NEWOBJ of the record's class global (no code of the class runs); the state is set
    by the one BUILD that follows. The bridge hands ``state`` to the registered class's own
    ``__setstate__``.
    """

    __slots__ = ("namespace", "name", "state", "has_state")

    def __init__(self, namespace: str, name: str) -> None:
        self.namespace = namespace
        self.name = name
        self.state: Any = None
        self.has_state = False

    @property
    def qualified_name(self) -> str:
        """``__torch__.torch.classes.<ns>.<Name>``: what ``ScriptObject._type().qualified_name()`` says."""
        return f"{CLASS_MODULE}.{self.namespace}.{self.name}"

    def __repr__(self) -> str:
        return f"<torchbind {self.namespace}.{self.name}>"


def class_problem(module: Any, name: Any) -> str | None:
    """Why ``module.name`` is not a torchbind class name (None when it is one): the module must be
    ``__torch__.torch.classes.<ns>`` and ``ns`` and the name ASCII identifiers not starting with ``__``."""
    if type(module) is not str or type(name) is not str:
        return "a class name must be text"
    ns = module[len(CLASS_MODULE) + 1:] if module.startswith(CLASS_MODULE + ".") else None
    if ns is None or not _NAME.fullmatch(ns) or not _NAME.fullmatch(name):
        return (f"{printable(module + '.' + name)} is not a TorchScript custom class name "
                f"({CLASS_MODULE}.<namespace>.<class>, each an ASCII identifier)")
    if ns in LIBTORCH_NAMESPACES:
        return (f"{ns}.{name} is one of libtorch's own torchbind classes, whose __setstate__ trusts its state "
                "(packed weights with a wrong row pointer crash the process): it is read only with allow_pickle=True")
    return None


# ------------------------------------------------------------------ torch.jit._pickle builders


def _typed_list(kind: str, accepts: Callable[[Any], bool]) -> Callable[[Any], list]:
    def build(data: Any) -> list:
        if type(data) is not list:
            raise SerializeError(f"build_{kind}list expects a list, got {type(data).__name__}")
        bad = next((x for x in data if not accepts(x)), _NONE)
        if bad is not _NONE:
            raise SerializeError(f"build_{kind}list holds {short(bad)}, not a {kind}")
        return data

    return build


_NONE = object()


def _restore_type_tag(value: Any, type_text: Any) -> Any:
    """``restore_type_tag(value, "List[str]")``: the value itself (the type only helps TorchScript)."""
    if type(value) not in (list, dict):
        raise SerializeError(f"restore_type_tag expects a list or a dict, got {type(value).__name__}")
    if type(type_text) is not str or len(type_text) > MAX_TYPE_TAG:
        raise SerializeError(f"restore_type_tag expects a type name of at most {MAX_TYPE_TAG} characters")
    return value


# ------------------------------------------------------------------ the table of one record


class _RecordGlobals(dict):
    """The globals of one record: a fixed table plus the one custom class the record may name."""

    def __init__(self, table: Mapping[tuple[str, str], Global]) -> None:
        super().__init__(table)
        self.named: tuple[str, str] | None = None
        self.made: TorchbindObject | None = None

    def get(self, key: Any, default: Any = None) -> Any:  # type: ignore[override]
        found = super().get(key)
        if found is not None or not (type(key) is tuple and len(key) == 2 and type(key[0]) is str
                                     and key[0].startswith(CLASS_MODULE + ".")):
            return found if found is not None else default
        problem = class_problem(*key)
        if problem is not None:
            raise SerializeError(problem)
        if self.named is not None and self.named != key:
            raise SerializeError(f"the record names two classes, {self.named[0]}.{self.named[1]} and "
                                 f"{key[0]}.{key[1]}: a torchbind record holds one object of one class")
        self.named = key
        return Global(new=self._new, setstate=self._set_state)

    def _new(self, *args: Any) -> TorchbindObject:
        if args:
            raise SerializeError(f"NEWOBJ of a torchbind class takes no arguments, got {short(args)}")
        if self.made is not None:
            raise SerializeError(f"the record makes a second object of class {self.made.name}: a torchbind "
                                 "record holds one object, its state only plain data")
        module, name = self.named  # resolved just before: the only class this record names
        self.made = TorchbindObject(module[len(CLASS_MODULE) + 1:], name)
        return self.made

    @staticmethod
    def _set_state(obj: TorchbindObject, state: Any) -> None:
        if obj.has_state:
            raise SerializeError(f"the object of class {obj.name} is given its state twice")
        obj.state, obj.has_state = state, True


_JIT = "torch.jit._pickle"
_JIT_GLOBALS: dict[tuple[str, str], Global] = {
    (_JIT, "build_intlist"): Global(call=_typed_list("int", lambda x: type(x) is int)),
    (_JIT, "build_doublelist"): Global(call=_typed_list("double", lambda x: type(x) is float)),
    (_JIT, "build_boollist"): Global(call=_typed_list("bool", lambda x: type(x) is bool)),
    (_JIT, "build_tensorlist"): Global(call=_typed_list("tensor", lambda x: True)),  # finish() checks each
    (_JIT, "restore_type_tag"): Global(call=_restore_type_tag),
}


def _tensor_global(key: tuple[str, str]) -> bool:
    """What TorchScript's pickler names for a dense tensor: ``_rebuild_tensor_v2``, a typed or
    untyped storage class in its persistent id, an (empty) ``OrderedDict`` of backward hooks."""
    return key in (_REBUILD, _HOOKS) or (key[0] in ("torch", "torch.storage") and key[1].endswith("Storage"))


def record_globals(tensor_table: Mapping[tuple[str, str], Global]) -> Mapping[tuple[str, str], Global]:
    """The globals one torchbind record may name: the dense-tensor globals of ``tensor_table`` (a
    ``torch.save`` reader's table: the walker's or the bridge's, whose tensor rules they share),
    the ``torch.jit._pickle`` builders and one class under ``__torch__.torch.classes``. A fresh
    table for each record."""
    return _RecordGlobals({**{k: v for k, v in tensor_table.items() if _tensor_global(k)}, **_JIT_GLOBALS})


# ------------------------------------------------------------------ the result


_SCALARS = (type(None), bool, int, float, str, bytes)
_KEYS = (bool, int, float, str)


def finish(value: Any, is_tensor: Callable[[Any], bool], nbytes: int) -> TorchbindObject:
    """``value`` (the result of a record's pickle, ``nbytes`` long) held to the rule: one
    :class:`TorchbindObject` whose state is plain data and tensors (``is_tensor``), nested at most
    :data:`~pt2serde.format.pickle_budget.MAX_DEPTH` deep and expanding to at most
    :func:`~pt2serde.format.pickle_budget.work_budget` objects."""
    if type(value) is not TorchbindObject:
        raise SerializeError(f"the record holds a {type(value).__name__}, not an object of a torchbind class")
    if not value.has_state:
        raise SerializeError(f"the object of class {value.name} has no state (no BUILD)")
    what = f"state of {value.namespace}.{value.name}"
    check_tree(value.state, max_depth=MAX_DEPTH, max_nodes=work_budget(nbytes), what=what)
    todo: list[Any] = [value.state]
    while todo:  # check_tree bounded it: no cycle, at most work_budget(nbytes) objects
        v = todo.pop()
        t = type(v)
        if t in _SCALARS or is_tensor(v):
            continue
        if t is list or t is tuple:
            todo.extend(v)
        elif t is dict:
            bad = next((k for k in v if type(k) not in _KEYS), _NONE)
            if bad is not _NONE:
                raise SerializeError(f"the {what} holds a dict key of type {type(bad).__name__} "
                                     "(only str, int, float and bool keys are plain data)")
            todo.extend(v.values())
        elif t is TorchbindObject:
            raise SerializeError(f"the {what} holds another torchbind object")
        else:
            raise SerializeError(f"the {what} holds a {t.__name__} ({short(v)}); only None, bool, int, float, "
                                 "str, bytes, tensors and lists, tuples and dicts of them are plain data")
    return value


def describe_torchbind(data: memoryview, what: str) -> TorchbindObject:
    """Walk a torchbind record (``torch._C._pickle_save`` bytes) with the torch-free tensor walker:
    the object's class and its state, tensors as :class:`~pt2serde.format.torchsave.TensorInfo`
    (each checked to lie inside its storage record). Nothing is unpickled; anything outside the
    rule is a :class:`SerializeError` naming ``what`` and the reason."""
    record = describe_torch_save(data, what, table=record_globals, meta_storages=True)
    try:
        return finish(record.value, lambda v: isinstance(v, TensorInfo), memoryview(data).nbytes)
    except SerializeError as e:
        raise SerializeError(f"{what}: {e}") from None

