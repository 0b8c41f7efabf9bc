"""The one exception type pt2serde raises, and the wire-path machinery behind its messages.

Every failure to serialize, deserialize, save or load surfaces as :class:`SerializeError`.
Decoders raise :class:`WireError` internally while they descend into a document; each
level that catches it prepends its own path segment, so the full ``$.a.b[3].c`` path is
only built when something actually went wrong (the hot path never formats strings).
"""

from __future__ import annotations

__all__ = ["SerializeError", "ArgumentError", "ArgumentValueError", "FolderNotFoundError", "FolderNotWritableError", "WireError", "wire_path"]


class SerializeError(RuntimeError):
    """Raised for every failure to serialize, deserialize, save or load.

    Malformed or hostile input also ends up here, never as a bare ``KeyError``,
    ``ValueError``, zip or JSON error. ``path`` holds the wire path (``$.x.y[2]``) or the
    archive record the problem was found at, when there is one.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


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
        self.message = message
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

    def __reduce__(self):  # keep the rendered message when pickled across processes
        return (SerializeError, (str(self),))


def wire_path(segments) -> str:
    """Join path segments (``.name`` / ``[i]``) under the document root ``$``."""
    return "$" + "".join(segments)
