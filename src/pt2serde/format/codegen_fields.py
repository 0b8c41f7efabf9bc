"""Every field of a program document that can become code, its class, and one walker (torch-free).

torch writes some strings of a loaded program into Python source that it compiles (fx's
``forward``, the pytree code of ``ep.module()``, the submodules of ``unflatten``) or looks
them up by name (``torch.ops``, ``getattr``). :data:`CODE_FIELDS` lists each such field of
:mod:`pt2serde.schema` once, with its class (one checker of :mod:`pt2serde.format.names` per class)
and where torch puts it; :data:`NEVER_CODE` lists every other string field with the reason it
never reaches code, so a new schema field has to be classified (``tests/format/test_codegen_fields.py``).

:func:`code_field_problems` walks a document and yields ``(message, $.path)`` for each value
its class refuses, and each treespec whose shape :mod:`pt2serde.format.treespec_text` refuses (the
module call graph's specs become ``module()``'s pytree code): ``validate`` reports them all (:func:`pt2serde.format.check.check_program`),
``load`` raises the first (:func:`check_code_fields`) before it builds anything with torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterator

from . import names, treespec_text
from .schema_decoder import MAX_PROBLEMS
from .strict_json import loads_json
from .tables import device_problem

from .. import schema
from ..errors import SerializeError

__all__ = ["CodeField", "CODE_FIELDS", "NEVER_CODE", "CHECKERS", "code_field_problems", "check_code_fields",
           "split_module_stack_entry", "call_index_problem"]


@dataclass(frozen=True)
class CodeField:
    """``kind``: the class of the value (a key of :data:`CHECKERS`); ``what``: how messages
    name it; ``where``: where torch writes it into code or looks it up."""

    kind: str
    what: str
    where: str


def _guard(value: object, what: str, path: str | None = None) -> str:
    from .guards import canonical_guard  # the grammar of guards_code lives in its own module

    return canonical_guard(value, path)  # type: ignore[arg-type]


#: the call targets that are not operators (``torch.ops.<ns>.<op>.<overload>``, higher-order
#: ``torch.ops.higher_order.<name>``) nor extension ops (``#<ns>:<op>``): the symbolic functions
#: and pre-dispatch helpers ``targets.KNOWN_FUNCTIONS`` resolves (a test checks they agree)
KNOWN_FUNCTION_NAMES = frozenset({
    *(f"_operator.{op}" for op in ("add", "and_", "eq", "floordiv", "ge", "gt", "le", "lshift", "lt", "mod", "mul",
                                  "ne", "neg", "or_", "pos", "pow", "rshift", "sub", "truediv")),
    "math.trunc", "torch._sym_sqrt", "torch.sym_float", "torch.sym_int", "torch.sym_ite", "torch.sym_max",
    "torch.sym_min", "torch.sym_not", "torch._C._set_grad_enabled",
    "torch.amp.autocast_mode._enter_autocast", "torch.amp.autocast_mode._exit_autocast",
    *(f"torch._functorch.predispatch.{fn}" for fn in (
        "_add_batch_dim", "_remove_batch_dim", "_vmap_increment_nesting", "_vmap_decrement_nesting",
        "_jvp_increment_nesting", "_jvp_decrement_nesting", "_enter_dual_level", "_exit_dual_level", "_make_dual",
        "_unpack_dual", "_unwrap_for_grad", "lazy_load_decompositions")),
})


def call_target(value: object, what: str, path: str | None = None) -> str:
    """A call target: an operator name (:func:`names.operator_name`) of one of the forms
    ``targets.resolve_target`` resolves. Whether the operator is registered in this process
    is the environment's (load says; validate cannot)."""
    value = names.operator_name(value, what, path)
    if value.startswith("#") or value in KNOWN_FUNCTION_NAMES:
        return value
    parts = value.split(".")
    if parts[:2] == ["torch", "ops"] and len(parts) == (4 if parts[2] == "higher_order" else 5):
        return value
    where = f" - at `{path}`" if path else ""
    raise SerializeError(f"Call target {value!r} is not an operator or a known symbolic function; "
                         f"refusing to resolve it{where}", path=path)


#: one checker per class (each returns the value or raises SerializeError)
CHECKERS: dict[str, Callable[..., str]] = {
    "identifier": names.identifier,
    "parameter_name": names.parameter_name,
    "value_name": names.value_name,
    "attribute_path": names.attribute_path,
    "quoted_text": names.quoted_text,
    "comment_text": names.comment_text,
    "call_target": call_target,
    "guard": _guard,
}

_VALUE = "value names become placeholder targets: fx writes graph inputs as `def forward(self, <name>)`, " \
         "unflatten makes a placeholder of every value crossing a submodule boundary"
_ATTR = "fx writes it as `self.a.b` / `getattr(self, \"<part>\")` (get_attr of ep.module(), the copy_ of a mutation)"

#: field (``Struct.field``, ``Struct.field[part]`` for a part of a structured string) -> class
CODE_FIELDS: dict[str, CodeField] = {
    # ---- names of values: identifiers
    "TensorArgument.name": CodeField("value_name", "value name", _VALUE),
    "SymIntArgument.as_name": CodeField("value_name", "value name", _VALUE),
    "SymFloatArgument.as_name": CodeField("value_name", "value name", _VALUE),
    "SymBoolArgument.as_name": CodeField("value_name", "value name", _VALUE),
    "CustomObjArgument.name": CodeField("value_name", "value name", _VALUE),
    "TokenArgument.name": CodeField("value_name", "value name", _VALUE),
    "Node.name": CodeField("value_name", "node name", "fx node names (fx renames them; torch writes identifiers)"),
    "GraphArgument.name": CodeField("value_name", "subgraph name",
                                    "register_module and `getattr(self, \"<name>\")` of the subgraph's get_attr"),
    "NamedArgument.name": CodeField("identifier", "keyword argument name",
                                    "targets without an op schema (HOPs, pre-dispatch helpers): fx writes "
                                    "`target(<name> = <value>)`; an op schema's own names are used otherwise"),
    "InputToConstantInputSpec.name": CodeField("value_name", "constant input name",
                                               "the placeholder of a constant input: `def forward(self, <name>)`"),
    "UserInputMutationSpec.user_input_name": CodeField("value_name", "user input name", _VALUE),
    "GradientToUserInputSpec.user_input_name": CodeField("value_name", "user input name", _VALUE),
    "ModuleCallSignature.forward_arg_names": CodeField("parameter_name", "forward argument name",
                                                       "pytree codegen of ep.module(): `def forward(self, <names>)`"),
    "ModuleCallSignature.in_spec": CodeField("parameter_name", "keyword argument name",
                                             "the keys of the kwargs dict of an (args, kwargs) spec: ep.module() "
                                             "writes `{'<key>':<arg>}` and forward parameters, unflatten placeholders"),
    # ---- text torch pastes between quotes of generated code
    "Argument.as_string[graph input]": CodeField(
        "quoted_text", "graph input string value",
        "ep.module()'s input guards write a str input as `L['s'] == '<value>'` (torch/export/_unlift.py)"),
    "ModuleCallSignature.in_spec[dict key]": CodeField(
        "quoted_text", "dict key",
        "ep.module()'s guards name a dict input's entry `L['d']['<key>']` in code and in a \"Guard failed: ...\" "
        "literal (pytree.keystr, repr() of the key)"),
    # ---- attribute paths
    "InputToParameterSpec.parameter_name": CodeField("attribute_path", "parameter name", _ATTR),
    "InputToBufferSpec.buffer_name": CodeField("attribute_path", "buffer name", _ATTR),
    "InputToTensorConstantSpec.tensor_constant_name": CodeField("attribute_path", "tensor constant name", _ATTR),
    "InputToCustomObjSpec.custom_obj_name": CodeField("attribute_path", "custom object name", _ATTR),
    "BufferMutationSpec.buffer_name": CodeField("attribute_path", "buffer name", _ATTR),
    "ParameterMutationSpec.parameter_name": CodeField("attribute_path", "parameter name", _ATTR),
    "GradientToParameterSpec.parameter_name": CodeField("attribute_path", "parameter name", _ATTR),
    "ModuleCallEntry.fqn": CodeField("attribute_path", "module path",
                                     "unflatten: `_get_attr(self, fqn)` and call_module targets (`self.<fqn>(...)`)"),
    "Node.metadata[nn_module_stack].path": CodeField("attribute_path", "nn_module_stack path",
                                                     "unflatten: call_module targets of the submodules it builds"),
    # ---- text torch prints as comments (print_readable; never compiled)
    "Node.metadata[stack_trace]": CodeField("comment_text", "stack trace", "`# File: ...` comments of print_readable"),
    "Node.metadata[torch_fn]": CodeField("comment_text", "torch_fn metadata", "comments of print_readable"),
    "Node.metadata[source_fn_stack]": CodeField("comment_text", "source_fn_stack metadata",
                                                "comments of print_readable; its targets are resolved by "
                                                "targets.resolve_meta_function (no lookup of a dunder)"),
    "Node.metadata[nn_module_stack].key": CodeField("comment_text", "nn_module_stack key", "comments of print_readable"),
    "Node.metadata[nn_module_stack].type": CodeField("comment_text", "nn_module_stack type",
                                                     "comments of print_readable, the `_ty` of unflatten's modules"),
    # ---- names looked up in torch.ops / the known functions
    "Node.target": CodeField("call_target", "call target", "targets.resolve_target: a torch.ops lookup"),
    "Argument.as_operator": CodeField("call_target", "operator argument", "targets.resolve_target"),
    # ---- code torch execs
    "ExportedProgram.guards_code": CodeField("guard", "guard", "exec'd by ep.module() (rebuilt by pt2serde.format.guards)"),
}

#: every other string field of the schema, and why it never reaches code
NEVER_CODE: dict[str, str] = {
    "Device.type": "parsed by torch.device",
    "SymExpr.expr_str": "parsed by pt2serde's own expression grammar (format/expr, built by bridge/expr), never eval'd",
    "Argument.as_string": "a value: fx writes values with repr() (graph inputs: see CODE_FIELDS)",
    "Argument.as_strings": "values: fx writes values with repr()",
    "Argument.as_string_to_argument": "dict keys of a value: fx writes it with repr()",
    "ConstantValue.as_string": "a value: fx writes values with repr()",
    "CustomObjArgument.class_fqn": "kept in metadata; the object itself comes from the constants payload",
    "Node.metadata": "only the keys of META_KEYS are read; custom and from_node are JSON, printed with repr()",
    "Graph.tensor_values": "keys looked up by the (checked) names of arguments",
    "Graph.sym_int_values": "keys looked up by the (checked) names of arguments",
    "Graph.sym_bool_values": "keys looked up by the (checked) names of arguments",
    "Graph.sym_float_values": "keys looked up by the (checked) names of arguments",
    "Graph.custom_obj_values": "keys looked up by the (checked) names of arguments",
    "ModuleCallSignature.out_spec": "read by pytree at run time (tree_unflatten); no code is generated from it",
    "GraphModule.metadata": "JSON kept in graph_module.meta",
    "GraphModule.treespec_namedtuple_fields": "kept in graph_module.meta; treespecs use registered types only",
    "NamedTupleDef.field_names": "kept in graph_module.meta; treespecs use registered types only",
    "ExportedProgram.opset_version": "compared with the running torch's versions",
    "ExportedProgram.range_constraints": "symbol names, parsed by pt2serde's expression grammar",
    "ExportedProgram.verifiers": "looked up among registered verifier dialects (a dict)",
    "ExportedProgram.torch_version": "informational",
    "PayloadMeta.path_name": "a record name, checked by the archive layer",
    "PayloadConfig.config": "state-dict names, matched with the (checked) signature names",
    "AOTInductorModelPickleData.library_basename": "not part of a program document",
    "AOTInductorModelPickleData.input_names": "not part of a program document",
    "AOTInductorModelPickleData.output_names": "not part of a program document",
    "ExternKernelNode.name": "not part of a program document",
}

_SCHEMA_OPS = ("torch.ops.", "#")


def _has_op_schema(target: str) -> bool:
    """Targets whose argument names come from an op schema (OpOverloads, extension ops); HOPs
    and the known functions (pre-dispatch helpers, symbolic ops) take fx kwargs as written."""
    return target.startswith(_SCHEMA_OPS) and not target.startswith("torch.ops.higher_order.")


def split_module_stack_entry(item: str) -> tuple[str, str, str]:
    """``(key, path, type)`` of one ``nn_module_stack`` entry ``key,path,type``: the one reader
    of the text for ``load`` and ``validate``, and the check ``save`` writes it through.

    Commas inside ``[]`` or ``()`` never separate (strict export's paths such as ``layers[1:]``
    or ``getattr(L['self'], 'dec,1')``); the type, a class path, holds none and follows the
    last comma. Strict export's key is a number; non-strict export's is ``L__self__`` + the
    path, so a module registered under a name with a comma (``"dec,1"``) puts as many commas
    in the key as in the path: the key ends at the middle one of the commas before the type.
    An odd number of commas outside brackets (or none) is refused.
    """
    if "[" not in item and "(" not in item:  # most entries: found at C speed
        n = item.count(",")
        if n >= 2 and not n % 2:
            before, ty = item.rsplit(",", 1)
            path = before.split(",", n // 2)[-1]  # after the key's n/2 - 1 commas and the middle one
            return before[:len(before) - len(path) - 1], path, ty
        commas = range(n)  # refused below, with the count
    else:  # PyTorch's reader's count: a closing bracket with none open hides the commas after it
        commas, depth = [], 0
        for i, c in enumerate(item):
            if c in "[(":
                depth += 1
            elif c in ")]":
                depth -= 1
            elif c == "," and depth == 0:
                commas.append(i)
    if len(commas) < 2 or len(commas) % 2:
        raise SerializeError(f"Expected 3 comma-separated fields `key,path,type` (the key and the path "
                             f"holding as many commas), got {len(commas) + 1} in {item!r}")
    middle, last = commas[len(commas) // 2 - 1], commas[-1]
    return item[:middle], item[middle + 1:last], item[last + 1:]


_DICT_TYPES = ("builtins.dict", "collections.OrderedDict", "collections.defaultdict")


def _spec_root(text: str):
    """The root node of a treespec's JSON text, or None when it is malformed (treespec.loads refuses it)."""
    from .codec import loads_json

    try:
        _, root = loads_json(text, what="treespec")
    except (SerializeError, ValueError, TypeError):
        return None
    return root if isinstance(root, dict) else None


def _dict_keys(root) -> Iterator[object]:
    """Every key of every dict-like node of a treespec (iteratively: no recursion on file depth).

    A dict's context is JSON text of its key list; a defaultdict's is an object whose
    ``dict_context`` holds the list."""
    from .codec import loads_json

    stack = [root]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        children = node.get("children_spec")
        if isinstance(children, list):
            stack.extend(children)
        if node.get("type") not in _DICT_TYPES:
            continue
        context = node.get("context")
        if isinstance(context, str):
            try:
                context = loads_json(context, what="treespec context")
            except (SerializeError, ValueError, TypeError):
                continue
        if isinstance(context, dict):
            context = context.get("dict_context")
        if isinstance(context, list):
            yield from context


def _kwargs_keys(text: str) -> list:
    """The kwargs keys of an ``(args, kwargs)`` treespec (JSON text), as ``_get_codegen`` and
    unflatten read them; ``[]`` for any other spec (malformed text is treespec.loads' to refuse)."""
    try:
        _, root = json.loads(text)
        if root.get("type") != "builtins.tuple" or len(root["children_spec"]) != 2:
            return []
        args, kwargs = root["children_spec"]
        if args.get("type") != "builtins.tuple" or kwargs.get("type") != "builtins.dict":
            return []
        keys = json.loads(kwargs["context"])
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return []
    return keys if isinstance(keys, list) else []


_CALL_INDEX_DIGITS = 9


def call_index_problem(text: str, what: str) -> str | None:
    """unflatten reads the text after ``@`` in a module path or an nn_module_stack key as the
    call index (``int(k.split("@")[-1])``, ``base, idx = fqn.split("@")``): it must be one
    decimal number, once."""
    if "@" not in text:
        return None
    base, _, index = text.rpartition("@")
    if "@" in base or not (index.isascii() and index.isdigit() and len(index) <= _CALL_INDEX_DIGITS):
        return f"{what} {text[:200]!r} has a call index that is not one decimal number after '@'"
    return None


class _Enough(Exception):
    """More problems than anyone reads: the walk stops (the callers cap at MAX_PROBLEMS too)."""


class _Found(list):
    """The walk's problems; past ``MAX_PROBLEMS + 1`` the walk ends (``validate``'s cap)."""

    def append(self, item: tuple[str, str]) -> None:
        super().append(item)
        if len(self) > MAX_PROBLEMS:
            raise _Enough

    def __iadd__(self, items):
        for item in items:
            self.append(item)
        return self


#: the classes the walker's memo is asked for directly on its hot path (one class for node and
#: value names, one for the three comment fields: tests/format/test_codegen_fields.py)
_VALUE_NAME = CODE_FIELDS["TensorArgument.name"].kind
_CALL_TARGET = CODE_FIELDS["Node.target"].kind
_COMMENT = CODE_FIELDS["Node.metadata[stack_trace]"].kind


#: Characters of accepted values :data:`_ACCEPTED` may hold before it starts afresh.
MAX_ACCEPTED_CHARS = 8 << 20

#: ``(class, value)`` pairs a checker of :data:`CHECKERS` (or the walk's JSON rule) has accepted,
#: shared by every walk of this process. Every rule here is a function of the value alone, so
#: an answer holds for any document: a value name recurs at each use, a module stack or stack
#: trace on most nodes, and the same names, targets and module paths recur from one program to
#: the next (another load of the same program, or a sibling of it, checks almost nothing again).
#: Only accepted values are kept, at most :data:`MAX_ACCEPTED_CHARS` characters of them.
_ACCEPTED: set[tuple[str, str]] = set()
_accepted_chars = 0


def _accept(item: tuple[str, str]) -> None:
    """Remember an accepted ``(class, value)`` (every checker accepts strings only); past the cap
    the memo is emptied first."""
    global _accepted_chars
    _accepted_chars += len(item[1]) + 64
    if _accepted_chars > MAX_ACCEPTED_CHARS:
        _ACCEPTED.clear()
        _accepted_chars = len(item[1]) + 64
    _ACCEPTED.add(item)


class _Walker:
    def __init__(self) -> None:
        self.out: list[tuple[str, str]] = _Found()
        #: (class, value) pairs already accepted, by this walk or an earlier one (:data:`_ACCEPTED`)
        self.ok: set[tuple[str, str]] = _ACCEPTED

    def check(self, field: str, value: object, path: str, what: str | None = None) -> None:
        kind = CODE_FIELDS[field].kind
        if type(value) is str and (kind, value) in self.ok:
            return
        try:
            CHECKERS[kind](value, what or CODE_FIELDS[field].what)
        except SerializeError as e:
            self.out.append((str(e), path))
        else:
            _accept((kind, value))  # type: ignore[arg-type]

    # -------------------------------------------------------------- arguments

    def argument(self, a: schema.Argument, path: str, what: str | None = None) -> None:
        t, v = a.type, a.value
        p = f"{path}.{t}"
        if t in ("as_tensor", "as_custom_obj"):
            self.check(f"{type(v).__name__}.name", v.name, f"{p}.name", what)
        elif t in ("as_sym_int", "as_sym_float", "as_sym_bool"):
            if v.type == "as_name":
                self.check(f"{type(v).__name__}.as_name", v.as_name, f"{p}.as_name", what)
        elif t == "as_optional_tensor":
            if v.type == "as_tensor":
                self.check("TensorArgument.name", v.as_tensor.name, f"{p}.as_tensor.name", what)
        elif t == "as_tensors":
            for i, x in enumerate(v):
                self.check("TensorArgument.name", x.name, f"{p}[{i}].name", what)
        elif t == "as_nested_tensors":
            for i, row in enumerate(v):
                for j, x in enumerate(row):
                    self.check("TensorArgument.name", x.name, f"{p}[{i}][{j}].name", what)
        elif t == "as_optional_tensors":
            for i, x in enumerate(v):
                if x.type == "as_tensor":
                    self.check("TensorArgument.name", x.as_tensor.name, f"{p}[{i}].as_tensor.name", what)
        elif t in ("as_sym_ints", "as_sym_floats", "as_sym_bools"):
            for i, x in enumerate(v):
                if x.type == "as_name":
                    self.check(f"{type(x).__name__}.as_name", x.as_name, f"{p}[{i}].as_name", what)
        elif t == "as_string_to_argument":
            for k, x in v.items():
                self.argument(x, f"{p}.{k}", what)
        elif t == "as_device":  # a device literal: the rules of tensor devices (torch would wrap an index past 127)
            if (bad := device_problem(v)) is not None:
                self.out.append((bad[0], f"{p}.{bad[1]}"))
        elif t == "as_operator":
            self.check("Argument.as_operator", v, p)
        elif t == "as_graph":
            self.check("GraphArgument.name", v.name, f"{p}.name")
            self.graph(v.graph, f"{p}.graph")

    # ------------------------------------------------------------------ graph

    def graph(self, g: schema.Graph, path: str) -> None:
        for i, a in enumerate(g.inputs):
            if a.type == "as_string":
                self.check("Argument.as_string[graph input]", a.as_string, f"{path}.inputs[{i}].as_string")
            self.argument(a, f"{path}.inputs[{i}]", "graph input name")
        for i, node in enumerate(g.nodes):
            self.node(node, f"{path}.nodes[{i}]")
        for i, a in enumerate(g.outputs):
            self.argument(a, f"{path}.outputs[{i}]")

    def _known_tensor(self, a: schema.Argument) -> bool:
        """``a`` is a tensor argument whose name was accepted already (most arguments are):
        what :meth:`argument` would conclude, without building its paths."""
        if a.type != "as_tensor":
            return False
        v = a.value
        return type(v) is schema.TensorArgument and type(v.name) is str and (_VALUE_NAME, v.name) in self.ok

    def node(self, node: schema.Node, path: str) -> None:
        ok = self.ok
        target = node.target
        if target != "" and not (type(target) is str and (_CALL_TARGET, target) in ok):
            # (an empty target is check_program's own problem, and resolve_target's)
            self.check("Node.target", target, f"{path}.target")
        if node.name and not (type(node.name) is str and (_VALUE_NAME, node.name) in ok):
            self.check("Node.name", node.name, f"{path}.name")
        kwargs_as_written = isinstance(target, str) and not _has_op_schema(target)
        for j, inp in enumerate(node.inputs):
            if kwargs_as_written and inp.name != "":
                self.check("NamedArgument.name", inp.name, f"{path}.inputs[{j}].name")
            if not self._known_tensor(inp.arg):
                self.argument(inp.arg, f"{path}.inputs[{j}].arg")
        for k, o in enumerate(node.outputs):
            if not self._known_tensor(o):
                self.argument(o, f"{path}.outputs[{k}]")
        self.metadata(node.metadata, f"{path}.metadata")

    def json_metadata(self, meta: dict[str, str], keys: tuple[str, ...], path: str) -> None:
        """Metadata torch keeps as JSON text (``custom``, ``from_node``): strict JSON, as every
        JSON of a file (no duplicate keys; ``NaN``/``Infinity`` tokens, which ``json.dumps``
        writes, allowed). Not code, but load parses it, so validate must refuse what load does."""
        for key in keys:
            text = meta.get(key)
            if text and not (type(text) is str and ("json", text) in self.ok):
                try:
                    loads_json(text, what=f"{key} metadata", nonfinite=[])
                except SerializeError as e:
                    self.out.append((str(e), f"{path}.{key}"))
                else:
                    _accept(("json", text))

    def metadata(self, meta: dict[str, str], path: str) -> None:
        ok = self.ok
        if "custom" in meta or "from_node" in meta:
            self.json_metadata(meta, ("custom", "from_node"), path)
        for key in ("stack_trace", "torch_fn", "source_fn_stack"):
            text = meta.get(key)
            if text and not (type(text) is str and (_COMMENT, text) in ok):
                self.check(f"Node.metadata[{key}]", text, f"{path}.{key}")
        stack = meta.get("nn_module_stack")
        if stack and not isinstance(stack, str):  # a schema object built in Python (JSON gives strings)
            self.out.append((f"nn_module_stack metadata must be a string, got {type(stack).__name__}",
                             f"{path}.nn_module_stack"))
            return
        if stack and ("nn_module_stack;", stack) in ok:  # the whole stack, as most nodes repeat it
            return
        if stack:
            found = len(self.out)
            p = f"{path}.nn_module_stack"
            for item in stack.split(";"):
                if ("nn_module_stack", item) in self.ok:
                    continue
                try:
                    key, module_path, ty = split_module_stack_entry(item)
                except SerializeError as e:
                    self.out.append((f"malformed nn_module_stack: {e}", p))
                    continue
                problems = len(self.out)
                self.check("Node.metadata[nn_module_stack].key", key, p)
                if type(key) is str and (bad := call_index_problem(key, "nn_module_stack key")):
                    self.out.append((bad, p))
                if module_path:  # "" is the root module
                    self.check("Node.metadata[nn_module_stack].path", module_path, p)
                self.check("Node.metadata[nn_module_stack].type", ty, p)
                if len(self.out) == problems:
                    _accept(("nn_module_stack", item))
            if len(self.out) == found:
                _accept(("nn_module_stack;", stack))

    # -------------------------------------------------------- signature, call graph

    def signature(self, sig: schema.GraphSignature, path: str) -> None:
        for kind, specs in (("input_specs", sig.input_specs), ("output_specs", sig.output_specs)):
            for i, spec in enumerate(specs):
                p = f"{path}.{kind}[{i}].{spec.type}"
                body = spec.value
                cls = type(body).__name__
                for field in getattr(body, "__dataclass_fields__", {}):
                    value = getattr(body, field)
                    if f"{cls}.{field}" in CODE_FIELDS:
                        self.check(f"{cls}.{field}", value, f"{p}.{field}")
                    elif isinstance(value, schema.Argument):
                        self.argument(value, f"{p}.{field}")
                    elif isinstance(value, (schema.TensorArgument, schema.CustomObjArgument, schema.TokenArgument)):
                        self.check(f"{type(value).__name__}.name", value.name, f"{p}.{field}.name")

    def module_call_graph(self, entries: list[schema.ModuleCallEntry], path: str) -> None:
        # ep.module(), call_spec and unflatten read entry 0 as the root module and its signature
        if not entries:
            self.out.append(("module call graph: it is empty; its first entry must be the root module (fqn '')",
                             path))
        elif entries[0].fqn != "":
            self.out.append((f"module call graph: the first entry must be the root module (fqn ''), got "
                             f"{entries[0].fqn!r}"[:300], f"{path}[0].fqn"))
        for i, entry in enumerate(entries):
            p = f"{path}[{i}]"
            if entry.fqn == "" and entry.signature is None:
                self.out.append(("module call graph: the root entry has no signature (module() needs it)",
                                 f"{p}.signature"))
            if entry.fqn:  # "" is the root module
                self.check("ModuleCallEntry.fqn", entry.fqn, f"{p}.fqn")
                if type(entry.fqn) is str and (bad := call_index_problem(entry.fqn, "module path")):
                    self.out.append((bad, f"{p}.fqn"))
            sig = entry.signature
            if sig is None:
                continue
            sp = f"{p}.signature"
            for field in ("inputs", "outputs"):
                for j, a in enumerate(getattr(sig, field)):
                    self.argument(a, f"{sp}.{field}[{j}]")
            seen_args: set = set()
            for j, name in enumerate(sig.forward_arg_names or ()):
                self.check("ModuleCallSignature.forward_arg_names", name, f"{sp}.forward_arg_names[{j}]")
                if isinstance(name, str):
                    if name in seen_args:  # `def forward(self, x, x)` in ep.module()
                        self.out.append((f"forward argument name {name!r} is repeated"[:300],
                                         f"{sp}.forward_arg_names[{j}]"))
                    seen_args.add(name)
            shape = {field: treespec_text.problems(getattr(sig, field)) for field in ("in_spec", "out_spec")}
            for field, found in shape.items():
                self.out += [(problem, f"{sp}.{field}") for problem in found]
            if shape["in_spec"]:
                continue
            kwargs_keys = _kwargs_keys(sig.in_spec)
            for key in kwargs_keys:
                self.check("ModuleCallSignature.in_spec", key, f"{sp}.in_spec")
            root = _spec_root(sig.in_spec)
            for key in _dict_keys(root) if root is not None else ():
                if isinstance(key, str) and key not in kwargs_keys:  # those are identifiers, checked above
                    self.check("ModuleCallSignature.in_spec[dict key]", key, f"{sp}.in_spec")

    def program(self, doc: schema.ExportedProgram) -> None:
        from .guards import GuardBudget, canonical_guard

        budget = GuardBudget()  # the guards of a document together (each runs on every call)
        for i, text in enumerate(doc.guards_code):
            try:
                canonical_guard(text, None, budget)
            except SerializeError as e:
                self.out.append((str(e), f"$.guards_code[{i}]"))
                if budget.used > budget.limit:
                    break
        gm = doc.graph_module
        self.json_metadata(gm.metadata, ("custom",), "$.graph_module.metadata")
        self.graph(gm.graph, "$.graph_module.graph")
        self.signature(gm.signature, "$.graph_module.signature")
        self.module_call_graph(gm.module_call_graph, "$.graph_module.module_call_graph")


def code_field_problems(doc: schema.ExportedProgram) -> Iterator[tuple[str, str]]:
    """``(message, $.path)`` for every value of ``doc`` that its class in :data:`CODE_FIELDS` refuses."""
    walker = _Walker()
    try:
        walker.program(doc)
    except _Enough:
        pass
    yield from walker.out


def check_code_fields(doc: schema.ExportedProgram) -> None:
    """Raise the first problem of :func:`code_field_problems` as a :class:`SerializeError`."""
    for message, path in code_field_problems(doc):
        raise SerializeError(f"{message} - at `{path}`", path=path)
