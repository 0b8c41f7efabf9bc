"""The restricted pickle machine (format layer): what it reads, what it refuses, its limits.

Hostile pickles are built here, either with ``pickle.dumps`` of objects whose
``__reduce__`` names a dangerous callable (never loaded with the standard library), or
byte by byte from opcodes. Payloads that would run a command ``touch`` a marker file, so
each refusal test also checks that nothing ran.
"""

from __future__ import annotations

import collections
import copyreg
import os
import pickle
import pickletools
import random
import struct
import subprocess
import sys
import time
import tracemalloc
import typing

import pytest

from pt2serde.format import pickle_budget, pickle_globals, pickle_machine, safepickle
from pt2serde.errors import SerializeError
from pt2serde.format.safepickle import PLAIN_GLOBALS, Global

P = pickle  # opcode constants only; nothing here calls pickle.loads


def load(data: bytes, **kw):
    kw.setdefault("globals", PLAIN_GLOBALS)
    kw.setdefault("where", "test.pkl")
    return safepickle.load(data, **kw)


def refused(data: bytes, match: str, **kw) -> SerializeError:
    with pytest.raises(SerializeError, match=match) as info:
        load(data, **kw)
    assert " at byte " in str(info.value) and "test.pkl" in str(info.value)
    return info.value


class Call:
    """Pickles as ``fn(*args)``: how a malicious ``__reduce__`` looks on the wire."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def u(text: str) -> bytes:  # BINUNICODE
    raw = text.encode()
    return P.BINUNICODE + struct.pack("<I", len(raw)) + raw


# --------------------------------------------------------------------------- layering


def test_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['sympy'] = None\n"
        "import pt2serde.format.safepickle as s\n"
        "assert s.load(b'\\x80\\x02K\\x07.', globals={}) == 7\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'torch' and sys.modules[m] is not None]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", [safepickle, pickle_budget, pickle_globals, pickle_machine])
def test_module_never_uses_the_standard_unpickler(module):
    source = open(module.__file__).read()
    for needle in ("import pickle", "Unpickler", "pickle.load", "find_class", "eval(", "exec(", "__import__",
                   "importlib"):
        assert needle not in source, needle


def test_every_pickle_opcode_is_handled_or_refused():
    known = {op.code.encode("latin-1")[0]: op.name for op in pickletools.opcodes}
    assert {code: pickle_machine.OPNAMES.get(code) for code in known} == known
    assert all(pickle_machine.HANDLERS[code] is not None for code in known)


# --------------------------------------------------------------------------- reading

PLAIN = [
    1, -1, 255, 256, 65535, 65536, -(2**31), 2**31 - 1, 2**31, 2**64, -(2**100), 0,
    0.5, -1e300, float("inf"), "", "x", "é€😀", "a" * 300, b"", b"\x00\xff", b"y" * 300,
    None, True, False, (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), [], [1, [2, [3]]],
    {}, {"a": 1, 2: "b", (1, 2): None}, {1, 2}, frozenset({3}), set(), frozenset(),
    bytearray(b"z"), 1 + 2j, slice(1, None, 2), collections.OrderedDict(b=1, a=2),
    collections.Counter(a=3),
]


@pytest.mark.parametrize("protocol", range(6))
def test_plain_values_round_trip_every_protocol(protocol):
    data = pickle.dumps(PLAIN, protocol=protocol)
    out = load(data)
    assert out == PLAIN
    assert [type(x) for x in out] == [type(x) for x in PLAIN]


@pytest.mark.parametrize("protocol", range(6))
def test_shared_references_stay_shared(protocol):
    inner = [1, 2]
    out = load(pickle.dumps({"a": inner, "b": inner, "t": (inner, inner)}, protocol=protocol))
    assert out["a"] is out["b"] is out["t"][0] is out["t"][1]


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_ordered_dict_state_comes_back_through_build(protocol):
    od = collections.OrderedDict([("w", 1), ("b", 2)])
    od._metadata = {"": {"version": 1}}
    out = load(pickle.dumps(od, protocol=protocol))
    assert list(out.items()) == [("w", 1), ("b", 2)] and out._metadata == {"": {"version": 1}}


def test_nan_and_text_floats():
    out = load(pickle.dumps([float("nan"), 1.25], protocol=0))
    assert out[0] != out[0] and out[1] == 1.25


def test_persistent_ids_go_to_the_callback():
    seen = []
    data = P.PROTO + b"\x02" + P.MARK + u("storage") + P.BININT1 + b"\x05" + P.TUPLE + P.BINPERSID + P.STOP
    assert load(data, persistent_load=lambda pid: seen.append(pid) or "S") == "S"
    assert seen == [("storage", 5)]
    assert load(b"Pkey\n.", persistent_load=lambda pid: pid.upper()) == "KEY"


def test_builders_and_constants_from_the_caller():
    table = {("m", "const"): Global(value=42), ("m", "pair"): Global(call=lambda a, b: (b, a))}
    data = b"\x80\x02cm\nconst\ncm\npair\nK\x01K\x02\x86R\x86."
    assert load(data, globals=table) == (42, (2, 1))


def test_python2_builtin_module_names_are_mapped():
    assert load(b"\x80\x02c__builtin__\nset\n]K\x01a\x85R.") == {1}


def test_newobj_only_for_globals_that_declare_new():
    table = {("m", "C"): Global(new=lambda *a, **k: ("new", a, k))}
    assert load(b"\x80\x02cm\nC\nK\x01\x85\x81.", globals=table) == ("new", (1,), {})
    data = b"\x80\x04cm\nC\nK\x01\x85}" + b"\x8c\x01kK\x02s" + b"\x92."
    assert load(data, globals=table) == ("new", (1,), {"k": 2})


# =========================================================================== hostile
# Each case: the pickle, and the start of the message it must be refused with.


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "a payload ran"


def _dangerous(marker) -> dict[str, bytes]:
    cmd = f"touch {marker}"
    cases = {
        "os.system": pickle.dumps(Call(os.system, cmd), protocol=2),
        "os.system proto4 STACK_GLOBAL": pickle.dumps(Call(os.system, cmd), protocol=4),
        "os.system proto0": pickle.dumps(Call(os.system, cmd), protocol=0),
        "subprocess.call": pickle.dumps(Call(subprocess.call, ["touch", str(marker)]), protocol=2),
        "subprocess.Popen": pickle.dumps(Call(subprocess.Popen, ["touch", str(marker)]), protocol=3),
        "builtins.eval": pickle.dumps(Call(eval, f"open({str(marker)!r}, 'w')"), protocol=2),
        "builtins.exec": pickle.dumps(Call(exec, f"open({str(marker)!r}, 'w')"), protocol=2),
        "builtins.getattr": pickle.dumps(Call(getattr, "x", "upper"), protocol=2),
        "builtins.__import__": b"\x80\x02cbuiltins\n__import__\nX\x02\x00\x00\x00os\x85R.",
        "copyreg._reconstructor": pickle.dumps(Call(copyreg._reconstructor, object, object, None), protocol=2),
        "torch.load": b"\x80\x02ctorch\nload\n" + u(str(marker)) + b"\x85R.",
        "torch._C._pickle_load_obj": b"\x80\x02ctorch._C\n_pickle_load_obj\nC\x01x\x85R.",
        "numpy _reconstruct": b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n)R.",
        "pickle.loads nested": b"\x80\x02cpickle\nloads\nC\x01.\x85R.",
        "INST os.system": b"(S'" + cmd.encode() + b"'\nios\nsystem\n.",
        "OBJ os.system": b"(cos\nsystem\nS'" + cmd.encode() + b"'\no.",
    }
    return cases


def test_dangerous_globals_are_refused(marker):
    for name, data in _dangerous(marker).items():
        with pytest.raises(SerializeError, match=r"is not an allowed global at byte \d+ of test.pkl"):
            load(data)
        assert not marker.exists(), name


def test_refusal_message_names_the_global_and_offset(marker):
    data = pickle.dumps(Call(os.system, f"touch {marker}"), protocol=2)
    with pytest.raises(SerializeError) as info:
        load(data, where="archive/data.pkl in data/sample_inputs/model.pt")
    assert str(info.value) == (
        f"GLOBAL {os.system.__module__}.system is not an allowed global "
        "at byte 2 of archive/data.pkl in data/sample_inputs/model.pt"
    )


def test_extension_codes_are_refused(marker):
    copyreg.add_extension(os.system.__module__, "system", 0xF0)
    try:
        data = pickle.dumps(Call(os.system, f"touch {marker}"), protocol=2)
    finally:
        copyreg.remove_extension(os.system.__module__, "system", 0xF0)
    assert P.EXT1 in data
    refused(data, "EXT1: extension-registry codes")
    refused(b"\x80\x02\x83\x01\x01)R.", "EXT2")
    refused(b"\x80\x02\x84\x01\x01\x00\x00)R.", "EXT4")


def test_build_only_on_objects_that_declare_state(marker):
    refused(b"\x80\x02}}b.", "BUILD on a dict is not allowed")
    refused(b"\x80\x02]}b.", "BUILD on a list is not allowed")
    refused(b"\x80\x02K\x01}b.", "BUILD on a int is not allowed")
    # an OrderedDict may take attributes, but none that shadow a method or a dunder
    od = b"\x80\x02ccollections\nOrderedDict\n)R"
    refused(od + b"}" + u("keys") + b"K\x01sb.", "may not set attribute 'keys'")
    refused(od + b"}" + u("__class__") + b"K\x01sb.", "may not set attribute '__class__'")
    refused(od + b"}" + u("x") + b"ccollections\nOrderedDict\nsb.", "global collections.OrderedDict cannot be")


class Arbitrary:
    """Pickled with the default ``__reduce_ex__``: ``NEWOBJ`` of this class, then ``BUILD``."""

    def __init__(self):
        self.x = 1


def test_newobj_of_classes_without_new_is_refused(marker):
    refused(b"\x80\x02ccollections\nOrderedDict\n)\x81.", "collections.OrderedDict may not be used to new")
    data = pickle.dumps(Arbitrary(), protocol=2)
    assert P.NEWOBJ in data
    refused(data, "GLOBAL test_safepickle.Arbitrary is not an allowed global")
    refused(b"\x80\x02X\x01\x00\x00\x00x)\x81.", "NEWOBJ needs an allowed global to new, got 'x'")


def test_reduce_needs_an_allowed_callable(marker):
    refused(b"\x80\x02" + u("os.system") + b")R.", "REDUCE needs an allowed global to call, got 'os.system'")
    refused(b"\x80\x02ccollections\nOrderedDict\nK\x01R.", "arguments for collections.OrderedDict must be a tuple")
    refused(b"\x80\x02c__builtin__\nbytearray\nJ\x00\x00\x00\x40\x85R.", "bytearray expects bytes")
    refused(b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x40\x85R.", "bytes takes no arguments")
    refused(b"\x80\x02c_codecs\nencode\n" + u("x") + u("rot13") + b"\x86R.", "only accepted as encode")


def test_globals_are_not_values():
    refused(b"\x80\x02ccollections\nOrderedDict\n.", "global collections.OrderedDict cannot be part of the result")
    refused(b"\x80\x02]ccollections\nOrderedDict\na.", "cannot be part of the result")


def test_out_of_band_buffers_unknown_opcodes_protocols():
    refused(b"\x80\x05\x97.", "NEXT_BUFFER: out-of-band buffers")
    refused(b"\x80\x05C\x01x\x98.", "READONLY_BUFFER")
    refused(b"\x80\x06N.", "pickle protocol 6 is not supported")
    refused(b"\x80\x02\xff.", r"unknown opcode 0xff")
    refused(b"\x80\x02N.N", "1 bytes follow the STOP opcode")
    refused(b"\x80\x02NN.", "STOP with 2 values on the stack")
    refused(b"\x80\x02(N.", "STOP with 1 unclosed MARK")
    refused(b"\x80\x02N", "pickle ends without a STOP opcode")
    refused(b"", "pickle ends without a STOP opcode")


def test_persistent_ids_without_a_callback_are_refused():
    refused(b"\x80\x02K\x01Q.", "persistent id 1 found, but this pickle may not refer to external records")


def test_stack_and_memo_misuse():
    refused(b"\x80\x02h\x03.", "BINGET refers to memo entry 3, which was never stored")
    refused(b"\x80\x02j\xff\xff\xff\xff.", "LONG_BINGET refers to memo entry 4294967295")
    refused(b"g7\n.", "GET refers to memo entry 7")
    refused(b"\x80\x02q\x00.", "BINPUT needs a value on the stack")
    refused(b"\x80\x02a.", "APPEND pops from an empty stack")
    refused(b"\x80\x02]K\x01(a.", "APPEND pops from an empty stack")  # may not reach below a MARK
    refused(b"\x80\x02K\x01t.", "TUPLE without a preceding MARK")
    refused(b"\x80\x02K\x01\x86.", "TUPLE2 needs 2 values")
    refused(b"\x80\x021.", "POP_MARK without a preceding MARK")
    refused(b"\x80\x020.", "POP from an empty stack")
    refused(b"\x80\x02]K\x01K\x02s.", "SETITEM on a list is not allowed")
    refused(b"\x80\x02}K\x01a.", "APPEND to a dict is not allowed")
    refused(b"\x80\x02)(K\x01\x90.", "ADDITEMS to a tuple is not allowed")
    refused(b"\x80\x02}(K\x01u.", "odd number of items")
    refused(b"\x80\x02}]K\x01s.", "dict key of type list is unhashable")
    refused(b"\x80\x04(]\x91.", "unhashable")


def test_memo_limit():
    data = b"\x80\x02N" + b"".join(b"r" + struct.pack("<I", i) for i in range(100)) + b"."
    refused(data, "memo grows over the limit of 50 entries", max_memo=50)


def test_truncated_lengths_are_refused_before_allocating():
    tracemalloc.start()
    try:
        cases = {
            b"\x80\x04\x8d" + struct.pack("<Q", 1 << 60) + b"xx.": "BINUNICODE8 declares 1152921504606846976 bytes",
            b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b".": "BINBYTES8 declares",
            b"\x80\x05\x96" + struct.pack("<Q", 1 << 40) + b".": "BYTEARRAY8 declares",
            b"\x80\x03B\xf0\xff\xff\xff.": "BINBYTES declares 4294967280 bytes but only 1 remain",
            b"\x80\x02X\xff\xff\xff\x7fabc.": "BINUNICODE declares",
            b"\x80\x02\x8b\xff\xff\xff\x7f.": "LONG4 declares",
            b"\x80\x02\x8b\xff\xff\xff\xff.": "LONG4 declares a negative length -1",
            b"\x80\x02T\xfe\xff\xff\xff.": "BINSTRING declares a negative length",
            b"\x80\x04\x95" + struct.pack("<Q", 1 << 50) + b"N.": "FRAME declares",
            b"\x80\x02J\x01\x02": "BININT argument is truncated",
        }
        for data, match in cases.items():
            refused(data, match)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_text_opcodes_are_bounded():
    refused(b"I" + b"9" * 10_000 + b"\n.", "INT integer has 10000 digits, over the limit of 4300")
    refused(b"L" + b"9" * 5000 + b"L\n.", "LONG integer has 5000 digits")
    refused(b"I12x\n.", "is not a decimal integer")
    refused(b"S" + b"a" * 200_000, "not terminated by a newline within 65536 bytes")
    refused(b"Fnope\n.", "FLOAT argument b'nope' is not a number")
    refused(b"Sabc\n.", "STRING argument is not a quoted string")
    refused(b"\x80\x02X\x02\x00\x00\x00\xc3\x28.", "BINUNICODE text is not valid UTF-8")


def test_deep_mark_nesting():
    start = time.process_time()  # CPU time: the work, not a busy machine
    refused(b"\x80\x02" + b"(" * 1_000_000 + b".", "MARKs are nested deeper than 512 levels")
    assert time.process_time() - start < 5


def test_deeply_nested_tuples_are_refused_when_made():
    refused(b"\x80\x02N" + b"\x85" * 1_000_000 + b".", "tuples are nested deeper than 256 levels")
    # frozensets hash their members when made: a member of 65 objects is refused first
    refused(b"\x80\x04" + b"(" * 300 + b"\x91" * 300 + b".",
            r"a frozenset member \(frozenset\) expands to more than 64 objects")


def test_builders_cannot_reset_the_depth_of_hashable_nesting():
    # 200 TUPLE1, then frozenset([...]) through the builder, and again: depth keeps counting
    step = b"\x85" * 200 + b"q\x000c__builtin__\nfrozenset\n]h\x00a\x85R"
    # the deep value is dropped before STOP: only the checks at creation can catch it. The
    # builder hashes its member, so the dict-key size limit (64 objects) refuses it first
    refused(b"\x80\x02N" + step * 3 + b"0N.",
            r"a builtins\.frozenset key \(tuple\) expands to more than 64 objects")


def test_deeply_nested_lists_are_refused():
    n = 1_000_000
    start = time.process_time()  # CPU time: the work, not a busy machine
    refused(b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b".", "the result is nested deeper than 256 levels")
    # the same depth reached through the memo: each list appended into the previous one
    body = b"\x80\x02]r\x00\x00\x00\x00"  # list L0 memo 0 (kept on the stack as the result)
    for i in range(1, 400):
        # new list, memo it, fetch the previous one, append the new one into it
        body += b"]r" + struct.pack("<I", i) + b"j" + struct.pack("<I", i - 1) + b"j" + struct.pack("<I", i) + b"a00"
    refused(body + b".", "the result is nested deeper than 256 levels")
    assert time.process_time() - start < 10


def test_deep_nesting_through_build_state():
    deep = b"]" * 300 + b"a" * 299
    od = b"\x80\x02ccollections\nOrderedDict\n)R}" + u("m") + deep + b"sb."
    refused(od, "attribute 'm' is nested deeper than 256 levels")


def test_cycles_are_refused():
    refused(b"\x80\x02]q\x00h\x00a.", r"the result contains a reference cycle \(a list inside itself\)")
    refused(b"\x80\x02}q\x00K\x01h\x00s.", "reference cycle")


def test_amplification_through_builders_is_bounded():
    big = b"\x80\x02]q\x00(" + b"K\x01" * 50_000 + b"e0"  # a 50k-item list in memo 0, popped
    call = b"c__builtin__\nset\nh\x00\x85R0"
    start = time.process_time()  # CPU time: the work, not a busy machine
    refused(big + call * 20_000 + b"N.", "builders were handed more than")
    assert time.process_time() - start < 10


def test_truncated_pickles_are_refused_at_every_length():
    data = pickle.dumps(PLAIN, protocol=2)
    for end in range(len(data)):
        with pytest.raises(SerializeError):
            load(data[:end])


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_bit_flips_never_escape_as_other_errors(protocol):
    data = bytearray(pickle.dumps(PLAIN + [PLAIN[:5], {"k": PLAIN[:3]}], protocol=protocol))
    rng = random.Random(1234 + protocol)
    outcomes = collections.Counter()
    for _ in range(1500):
        mutated = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 3))):
            i = rng.randrange(len(mutated))
            mutated[i] = rng.randrange(256) if rng.random() < 0.5 else mutated[i] ^ (1 << rng.randrange(8))
        try:
            load(bytes(mutated))
            outcomes["loaded"] += 1
        except SerializeError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


def test_check_tree_accepts_shared_dags_quickly():
    leaf = list(range(10))
    layer = [leaf] * 100
    for _ in range(200):
        layer = [layer, layer]
    safepickle.check_tree(layer)  # 200 levels, shared: linear, not exponential
    for _ in range(60):
        layer = [layer]
    with pytest.raises(SerializeError, match="nested deeper than 256"):
        safepickle.check_tree(layer)


# --------------------------------------------------------------------------- work budget (pickle DAGs)


def dag(depth: int, tail: bytes) -> bytes:
    """``T(0) = ()``, ``T(i) = (T(i-1), T(i-1))`` through the memo (memo ``i`` holds ``T(i)``),
    then ``tail``, which may fetch ``T(depth)`` with ``h<depth>``: 2**depth objects in ~8 bytes
    per level."""
    out = b"\x80\x02)q\x000"
    for i in range(depth):
        out += b"h" + bytes([i]) + b"h" + bytes([i]) + P.TUPLE2 + b"q" + bytes([i + 1]) + P.POP
    return out + tail


def T(depth: int) -> bytes:
    return b"h" + bytes([depth])


DAG_KEYS = {
    "dict key": (lambda d: P.EMPTY_DICT + T(d) + b"K\x01" + P.SETITEM + P.STOP, r"a dict key \(tuple\)"),
    "dict keys (SETITEMS)": (lambda d: P.EMPTY_DICT + P.MARK + T(d) + b"K\x01" + P.SETITEMS + P.STOP,
                             r"a dict key \(tuple\)"),
    "DICT": (lambda d: P.MARK + T(d) + b"K\x01" + P.DICT + P.STOP, r"a dict key \(tuple\)"),
    "set member": (lambda d: P.EMPTY_SET + P.MARK + T(d) + P.ADDITEMS + P.STOP, r"a set member \(tuple\)"),
    "frozenset member": (lambda d: P.MARK + T(d) + P.FROZENSET + P.STOP, r"a frozenset member \(tuple\)"),
    "set(...) builder": (lambda d: b"c__builtin__\nset\n]" + T(d) + b"a\x85R.",
                         r"a builtins\.set key \(tuple\)"),
    "frozenset(...) builder": (lambda d: b"c__builtin__\nfrozenset\n]" + T(d) + b"a\x85R.",
                               r"a builtins\.frozenset key \(tuple\)"),
    "OrderedDict(...) builder": (lambda d: b"ccollections\nOrderedDict\n]" + T(d) + b"K\x01\x86a\x85R.",
                                 r"a collections\.OrderedDict key \(tuple\)"),
}


@pytest.mark.parametrize("case", list(DAG_KEYS))
def test_dag_keys_are_refused_before_hashing(case):
    """64 levels (2**64 objects to hash, forever) are refused in microseconds; 5 levels load."""
    build, what = DAG_KEYS[case]
    assert load(dag(5, build(5)))  # 63 objects: under the 64-object key limit
    start = time.process_time()  # CPU time: the work, not a busy machine
    refused(dag(64, build(64)), what + r" expands to more than 64 objects when shared references are counted; "
                                      r"hashing it would walk every one at byte \d+ of test\.pkl")
    assert time.process_time() - start < 0.1


def test_dag_values_are_refused_by_the_work_budget():
    """Not hashed but still a bomb: repr, ==, copy and pytree walk the tree expansion."""
    value = dag(64, T(64) + P.TUPLE1 + P.STOP)
    assert len(value) < 600
    start = time.process_time()  # CPU time: the work, not a busy machine
    refused(value, r"the result expands to more than 65536 objects when shared references are counted "
                   r"\(hashing, comparing, printing or flattening it would walk every one\) at byte \d+ of test\.pkl")
    assert time.process_time() - start < 0.1
    assert load(dag(14, T(14) + P.STOP))  # 32767 objects: under the floor
    refused(dag(16, T(16) + P.STOP), "expands to more than 65536 objects")
    assert load(dag(16, T(16) + P.STOP), max_nodes=1 << 17)  # the caller may grant more


def test_work_budget_numbers():
    assert safepickle.MAX_KEY_NODES == 64
    assert safepickle.work_budget(0) == safepickle.work_budget(32768) == 1 << 16
    assert safepickle.work_budget(1 << 20) == 2 << 20


def test_plain_data_without_shared_containers_stays_under_one_object_per_byte():
    """Why two objects per byte is enough: every object a pickle makes costs it at least one opcode."""
    values = [list(range(5000)), [None] * 20000, {str(i): i for i in range(3000)}, [[]] * 1, [()] * 30000,
              ["s"] * 30000]
    for value in values:
        for protocol in (0, 2, 4, 5):
            data = pickle.dumps(value, protocol=protocol)
            nodes = safepickle.expanded_size(load(data), 1 << 30)
            assert nodes <= len(data), (protocol, nodes, len(data))


def test_key_checks_cost_no_more_than_the_bytes():
    """A 63-object key, memoised once, used 200,000 times; flat 64-object tuples too."""
    keys = dag(5, P.EMPTY_DICT + P.MARK + (T(5) + P.NONE) * 200_000 + P.SETITEMS + P.STOP)
    flat = (b"\x80\x02" + P.MARK + b"K\x01" * 63 + P.TUPLE + b"q\x01" + P.POP
            + P.EMPTY_DICT + P.MARK + (b"h\x01" + P.NONE) * 200_000 + P.SETITEMS + P.STOP)
    for data in (keys, flat):
        start = time.process_time()  # CPU time: the work, not a busy machine
        assert len(load(data)) == 1
        assert time.process_time() - start < 3


def test_expanded_size_is_bounded_by_its_limit():
    t = ()
    for _ in range(64):
        t = (t, t)
    start = time.process_time()  # CPU time: the work, not a busy machine
    assert safepickle.expanded_size(t, 1000) == 1001
    assert safepickle.expanded_size((1, (2, 3), [4, {5: 6}]), 100) == 10  # every container and leaf
    assert time.process_time() - start < 0.1


# --------------------------------------------------------------------------- namedtuples

_Plain = collections.namedtuple("_Plain", "a b", defaults=[0])


class _Typed(typing.NamedTuple):
    a: int
    b: str = "x"

    def describe(self) -> str:  # an ordinary method: no reader calls it
        return "typed"


class _Sub(collections.namedtuple("_SubBase", "x y")):
    __slots__ = ()

    def area(self):
        return self.x * self.y


class _Iter(collections.namedtuple("_IterBase", "x y")):
    def __iter__(self):
        raise AssertionError("ran")


class _Field(collections.namedtuple("_FieldBase", "x y")):
    @property
    def x(self):
        raise AssertionError("ran")


class _Meta(type):
    pass


class _Count(collections.namedtuple("_CountBase", "x y")):
    count = 3


def test_plain_namedtuples_are_accepted():
    import platform

    for cls in (_Plain, _Typed, _Sub):
        assert safepickle.namedtuple_problem(cls) is None, cls
    problems = {
        platform.uname_result: "has its own __iter__",
        _Iter: "has its own __iter__",
        _Field: "has field x as a property, not a tuple item",
        _Count: "has its own count",
        type("_R", (collections.namedtuple("_RB", "a"),), {"__repr__": lambda self: "r"}): "has its own __repr__",
        type("_H", (collections.namedtuple("_HB", "a"),), {"__hash__": lambda self: 1}): "has its own __hash__",
        type("_G", (collections.namedtuple("_GB", "a"),), {"__getattr__": lambda self, n: 1}):
            "has its own __getattr__",
        type("_D", (collections.namedtuple("_DB", "a"),), {"__del__": lambda self: 1}): "has its own __del__",
        type("_N", (collections.namedtuple("_NB", "a"),), {"__new__": lambda cls, a: 1}): "has its own __new__",
        _Meta("_M", (tuple,), {"_fields": ("a",)}): "metaclass",
        type("_F", (tuple,), {"_fields": ("a",)}): "has field a that is not item 0",
        tuple: "has no _fields",
    }
    for cls, problem in problems.items():
        assert problem in (safepickle.namedtuple_problem(cls) or ""), cls


def _namedtuple_pickle(module: str, name: str, values: list[str]) -> bytes:
    return (b"\x80\x02c" + f"{module}\n{name}\n".encode() + P.MARK + b"".join(u(v) for v in values)
            + P.TUPLE + P.NEWOBJ + P.STOP)


def test_namedtuples_are_rebuilt_without_running_their_code():
    table = safepickle.with_namedtuples(PLAIN_GLOBALS)
    got = load(_namedtuple_pickle(__name__, "_Plain", ["p", "q"]), globals=table)
    assert type(got) is _Plain and got == ("p", "q")
    got = load(pickle.dumps(_Sub(1, 2), protocol=2), globals=table)
    assert type(got) is _Sub and got.area() == 2
    refused(_namedtuple_pickle(__name__, "_Iter", ["p", "q"]),
            rf"{__name__}\._Iter has its own __iter__: only plain namedtuples \(made by collections\.namedtuple or "
            r"typing\.NamedTuple, without overrides\) are rebuilt at byte 2 of test\.pkl", globals=table)
    # never imports: a module that is not imported is not looked at
    refused(_namedtuple_pickle("pt2serde_no_such_module", "X", []), "is not an allowed global", globals=table)


_SPAWNED: list[str] = []


def _audit(event: str, args) -> None:
    if event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.system", "os.fork"):
        _SPAWNED.append(event)


sys.addaudithook(_audit)


def test_uname_result_is_refused_and_spawns_nothing():
    """``platform.uname_result.__iter__`` runs ``uname -p``: it used to run while the result was checked."""
    import platform  # noqa: F401 - the class must be importable for the attack to mean anything

    _SPAWNED.clear()
    refused(_namedtuple_pickle("platform", "uname_result", list("abcdef")),
            r"platform\.uname_result has its own __iter__", globals=safepickle.with_namedtuples(PLAIN_GLOBALS))
    assert _SPAWNED == []


# ----------------------------------------------------------- keys chosen to collide (issue 15 red team)

_M61 = (1 << 61) - 1  # CPython's int hash modulus: k * _M61 all hash to 0


@pytest.mark.parametrize("value", [
    {k * _M61: 0 for k in range(1, 200)},
    {k * _M61 for k in range(1, 200)},
    frozenset(k * _M61 for k in range(1, 200)),
    {(k * _M61,): k for k in range(1, 200)},  # tuples of colliding ints collide too
], ids=["dict", "set", "frozenset", "tuple keys"])
def test_keys_that_share_a_hash_are_refused(value):
    """A dict or set of n keys with one hash takes n**2 comparisons to build (100k keys: over a
    minute): the 65th distinct key of a pickle with a hash already seen 64 times is refused."""
    refused(pickle.dumps(value, protocol=2), r"65 distinct .* share one hash value .* quadratic time")


def test_equal_keys_and_few_collisions_are_fine():
    """The same key in many dicts (a list of records) and up to 64 distinct keys sharing a hash load."""
    rows = [{"name": i, 7: i, (1, 2): i} for i in range(5000)]
    assert load(pickle.dumps(rows, protocol=2)) == rows
    few = {k * _M61: k for k in range(1, 65)}
    assert load(pickle.dumps(few, protocol=2)) == few
    assert load(pickle.dumps({-1: "a", -2: "b"}, protocol=2)) == {-1: "a", -2: "b"}  # hash(-1) == hash(-2)
