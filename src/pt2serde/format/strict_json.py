"""Strict JSON text: parsing with a size cap, an expansion budget and no duplicate keys (torch-free).

Every JSON reader of file data goes through :func:`loads_json` (or at least
:func:`check_json_expansion`): the document's bytes are capped, the Python objects its parse
would make are estimated from its bytes before anything is parsed, ``NaN``/``Infinity``
tokens are refused (or, for old writers, recorded), and an object naming a key twice is
refused (parsers disagree on which value wins). :func:`loads_json_counted` reads program
documents without the per-object duplicate-key hook where a count proves there are none.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, TypeVar

from ..errors import SerializeError

__all__ = ["loads_json", "loads_json_counted", "ColonCount", "json_expansion", "check_json_expansion", "MAX_JSON_BYTES", "JSON_EXPANSION",
           "JSON_EXPANSION_FLOOR", "NONFINITE_FLOATS"]

MAX_JSON_BYTES = 1 << 31  # refuse documents over 2 GiB before parsing them

#: JSON expansion budget: the Python objects one document may become, estimated from its
#: bytes before they are parsed, at most ``JSON_EXPANSION`` bytes per byte of JSON plus
#: ``JSON_EXPANSION_FLOOR``. The estimate charges what CPython 3.11 spends on each token
#: (strings included): a list 72 bytes (``[``), a dict 184 (``{``), an item 16 (``,``/``:``).
#: Real documents estimate at 5-11 bytes per byte (programs of 1k-5k nodes: 6.7-7.0,
#: payload headers: 9-11, every compat-corpus record: at most 9 above 1 KB); nested ``[]``
#: estimate at 40 and cost 36 (``[[[[]]]]``), so a 64 MiB document of them is refused
#: instead of becoming 2.3 GiB of lists.
JSON_EXPANSION = 16
JSON_EXPANSION_FLOOR = 8 << 20
_TOKEN_COST = ((b"[", 72), (b"{", 184), (b",", 16), (b":", 16))

#: The strings that stand for non-finite floats (PyTorch's writer, and JSON tokens of old writers).
NONFINITE_FLOATS = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


def loads_json(
    data: bytes | bytearray | memoryview | str,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    what: str = "JSON document",
    nonfinite: list[str] | None = None,
    record: str | None = None,
) -> Any:
    """Parse strict JSON (UTF-8, no ``NaN``/``Infinity`` tokens) with a size cap.

    ``nonfinite``: when given, such tokens are read as floats and recorded in this list
    (for old documents whose writers produced them) instead of being refused.
    ``record``: the archive record ``data`` is (``what`` then defaults to ``record <name>``);
    errors carry it as :attr:`SerializeError.record`.
    """
    if record is not None:
        try:
            return loads_json(data, max_bytes=max_bytes, what=f"record {record}" if what == "JSON document" else what,
                              nonfinite=nonfinite)
        except SerializeError as e:
            raise e.wrapped(str(e), record=record) from None
    return _parse(_checked_text(data, max_bytes, what), what, nonfinite, _unique_keys)


def _checked_text(data: bytes | bytearray | memoryview | str, max_bytes: int, what: str) -> str:
    """``data`` as text, within the size cap and the expansion budget, valid UTF-8."""
    if len(data) > max_bytes:
        raise SerializeError(f"{what} is {len(data)} bytes, over the limit of {max_bytes} bytes")
    if not isinstance(data, (str, bytes)):
        data = bytes(data)
    check_json_expansion(data, what)
    try:
        return data if isinstance(data, str) else data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SerializeError(f"{what} is not valid UTF-8 (byte {e.start})") from None


def _parse(text: str, what: str, nonfinite: list[str] | None, pairs_hook: Callable | None) -> Any:
    if nonfinite is None:
        parse_constant = _reject_constant
    else:
        def parse_constant(token: str) -> float:
            nonfinite.append(token)
            return NONFINITE_FLOATS[token]
    try:
        return json.loads(text, parse_constant=parse_constant, object_pairs_hook=pairs_hook)
    except _DuplicateKey as e:
        raise SerializeError(f"{what} is not valid JSON: duplicate key {e.key!r} in one object") from None
    except json.JSONDecodeError as e:
        raise SerializeError(f"{what} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise SerializeError(f"{what} is nested too deeply to parse") from None
    except ValueError as e:  # e.g. an integer past CPython's digit limit
        raise SerializeError(f"{what} cannot be read: {e}") from None


T = TypeVar("T")


class ColonCount:
    """What a counting decoder (``decode`` of :func:`loads_json_counted`) reports: ``members``,
    the members of the objects it read, each object once, and ``colons``, the ``:`` in strings
    it read, each string once. Both undercount what the decoder skipped, never overcount.
    ``shared``: the decoder's memo of equal leaves it builds once per document."""

    __slots__ = ("members", "colons", "shared")

    def __init__(self) -> None:
        self.members = 0
        self.colons = 0
        self.shared: dict = {}


def loads_json_counted(
    data: bytes | bytearray | memoryview | str,
    decode: Callable[[Any, ColonCount], T],
    *,
    max_bytes: int = MAX_JSON_BYTES,
    what: str = "JSON document",
    worth_trying: Callable[[str], bool] | None = None,
) -> tuple[Any, T] | None:
    """``(tree, decode(tree, count))`` of strict JSON, its keys proven unique without the
    per-object hook of :func:`loads_json` (the hook is a Python call per object: a third of
    the parse of a program document); ``None`` where that proof fails, and then the caller
    parses with :func:`loads_json`, which names the duplicate key or any other problem.

    The proof counts colons. In JSON text a ``:`` outside a string follows a key, one per
    member of an object as written; a duplicate key leaves one member fewer in the parsed
    object. With no ``\\u003a`` escape in the text, a string holds exactly the colons its
    text does. So ``members + colons`` (what ``decode`` read) is at most the text's count of
    ``:``, and equals it only when no key was dropped (and every colon in a string was
    counted). Size cap, expansion budget, UTF-8 and ``NaN``/``Infinity`` tokens are checked
    as by :func:`loads_json` (a document with such tokens gets ``None``).

    A text that fails the proof is parsed twice: ``worth_trying(text)`` (a cheap look at the
    text, never trusted) can send the documents ``decode`` would refuse anyway straight back.
    """
    text = _checked_text(data, max_bytes, what)
    if "\\u003" in text and ("\\u003a" in text or "\\u003A" in text):  # a colon not shown in the text
        return None
    if worth_trying is not None and not worth_trying(text):
        return None
    seen: list[str] = []
    try:  # which problem a broken text names first is loads_json's to say
        tree = _parse(text, what, seen, None)
    except SerializeError:
        return None
    if seen:
        return None
    count = ColonCount()
    try:
        value = decode(tree, count)
    except Exception:  # noqa: BLE001 - the careful path explains what is wrong
        return None
    if count.members + count.colons != text.count(":"):
        return None
    return tree, value


def json_expansion(data: bytes | str) -> int:
    """Estimated bytes of the Python objects ``json.loads(data)`` makes (see :data:`JSON_EXPANSION`).

    Tokens are counted everywhere, strings included: an overestimate only for punctuation
    inside strings, and the JSON that real documents keep in strings (treespecs, custom
    metadata) is parsed again later anyway. Runs at the speed of ``bytes.count``.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return sum(cost * data.count(token) for token, cost in _TOKEN_COST)


def check_json_expansion(data: bytes | str, what: str = "JSON document") -> None:
    """Refuse JSON text whose parse would make more Python objects than its size justifies:
    over ``JSON_EXPANSION`` bytes of objects per byte plus ``JSON_EXPANSION_FLOOR`` (estimated
    by :func:`json_expansion`, before anything is parsed). Every JSON reader of file data
    calls this, directly or through :func:`loads_json`."""
    budget = JSON_EXPANSION * len(data) + JSON_EXPANSION_FLOOR
    if len(data) * 184 <= budget:  # not even all-`{` could reach the budget
        return
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    # `,` and `:` that json.loads acts on are at most one byte in two (a value lies between
    # two of them), so two counts settle most documents (programs: about 13 per byte)
    if 72 * raw.count(b"[") + 184 * raw.count(b"{") + 8 * len(raw) <= budget:
        return
    cost = json_expansion(raw)
    if cost > budget:
        raise SerializeError(
            f"{what} would expand to about {cost} bytes of Python objects, over the limit of {budget} "
            f"({JSON_EXPANSION} per byte of its {len(data)} bytes, plus {JSON_EXPANSION_FLOOR}): "
            "it is mostly brackets, braces and separators"
        )


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list) -> dict:
    """``object_pairs_hook``: refuse an object that names a key twice (parsers disagree on
    which value wins)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return out


def _reject_constant(token: str) -> Any:
    raise SerializeError(f"JSON document contains the non-standard token {token}")
