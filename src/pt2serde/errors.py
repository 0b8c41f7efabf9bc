"""The one exception type pt2serde raises, and the wire-path machinery behind its messages.

Every failure to serialize, deserialize, save or load surfaces as :class:`SerializeError`.
Decoders raise :class:`WireError` internally while they descend into a document; each
level that catches it prepends its own path segment, so the full ``$.a.b[3].c`` path is
only built when something actually went wrong (the hot path never formats strings).
"""

from __future__ import annotations

__all__ = ["SerializeError", "ArgumentError", "ArgumentValueError", "FolderNotFoundError", "FolderNotWritableError",
           "NotAZipError", "WireError", "wire_path"]


class SerializeError(RuntimeError):
    """Raised for every failure to serialize, deserialize, save or load.

    Malformed or hostile input also ends up here, never as a bare ``KeyError``,
    ``ValueError``, zip or JSON error. ``str(e)`` is the whole message; the context it names
    is also kept in typed fields, set where the error is raised (``None`` where it has none),
    so that code never has to take the message apart:

    * ``record``: the archive record the message names (``data/weights/weight_0``);
    * ``path``: the wire path (``$.graph_module.graph.nodes[3]``), or the data a pickle error
      is about;
    * ``node``: the graph node the problem is at;
    * ``problem``: the message without its location (the whole message where it has none);
    * ``offset``: the byte offset in a pickle stream the problem was found at;
    * ``feature``: what a PyTorch release cannot read (``dtype uint16``), for a refused
      downgrade.
    """

    record: str | None = None
    path: str | None = None
    node: str | None = None
    offset: int | None = None
    feature: str | None = None

    def __init__(self, message: str, *, record: str | None = None, path: str | None = None,
                 node: str | None = None, problem: str | None = None, offset: int | None = None,
                 feature: str | None = None) -> None:
        super().__init__(message)
        self.record = record
        self.path = path
        self.node = node
        self.problem = message if problem is None else problem
        self.offset = offset
        self.feature = feature

    def wrapped(self, message: str, **fields) -> "SerializeError":
        """A new error with the text ``message`` (which says more around this one's) that keeps
        this error's fields, except those given in ``fields`` (``record=...``)."""
        kept = {"record": self.record, "path": self.path, "node": self.node, "problem": self.problem,
                "offset": self.offset, "feature": self.feature}
        return SerializeError(message, **{**kept, **fields})


class NotAZipError(SerializeError):
    """The bytes are no zip archive at all (empty, too short, no end-of-central-directory
    record): the caller may say what the file is instead (:mod:`pt2serde.format.filekind`)."""


class ArgumentError(SerializeError, TypeError):
    """A Python argument of the wrong type (``save(model)``, ``deserialize(b"...")``).

    Both a :class:`SerializeError` (the API's one exception type) and a ``TypeError`` (what
    Python code expects for a wrong argument); the message names the argument and the fix.
    """


class ArgumentValueError(SerializeError, ValueError):
    """A Python argument of the right type but a value pt2serde cannot use
    (``target_schema="2.10"``); both a :class:`SerializeError` and a ``ValueError``."""


class FolderNotFoundError(SerializeError, FileNotFoundError):
    """``save`` to a path whose folder does not exist. Also a ``FileNotFoundError``, which is
    what ``torch.export.save`` raises there, so code written for it still catches it."""


class FolderNotWritableError(SerializeError, PermissionError):
    """``save`` to a folder this process may not write; also a ``PermissionError``."""


class WireError(SerializeError):
    """A decode error that is still travelling up the document tree.

    ``segments`` is collected innermost-first while the error propagates; ``message``
    is the problem without the location. ``str()`` renders
    ``<message> - at `$.path```, the house format for decode errors.
    """

    def __init__(self, message: str) -> None:
        RuntimeError.__init__(self, message)
        self.message = self.problem = message
        self.segments: list[str] = []

    def push(self, segment: str | int) -> "WireError":
        """Record one more enclosing path segment (a field name or a list index)."""
        self.segments.append(f"[{segment}]" if isinstance(segment, int) else f".{segment}")
        return self

    @property
    def path(self) -> str:  # type: ignore[override]
        return wire_path(reversed(self.segments))

    def __str__(self) -> str:
        return f"{self.message} - at `{self.path}`"

    def __reduce__(self):  # keep the rendered message (and its fields) when pickled across processes
        return (SerializeError, (str(self),), {"path": self.path, "problem": self.message})


def wire_path(segments) -> str:
    """Join path segments (``.name`` / ``[i]``) under the document root ``$``."""
    return "$" + "".join(segments)
