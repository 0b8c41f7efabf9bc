"""What is wrong with an archive, as ``validate`` lists it and ``load`` raises it.

The torch-free model of an archive (:mod:`pt2serde.format.contents`,
:mod:`pt2serde.format.tensor_entries`) collects :class:`Problem` objects instead of raising, so
that ``validate`` reports all of them and ``inspect`` shows what it could read; ``load``
raises the first that blocks it (:func:`first_error`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SerializeError

__all__ = ["Problem", "first_error", "key_path"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an archive: ``message @ where``.

    ``where`` is a wire path (``$.graph_module.graph.nodes[3]``) inside ``record`` when the
    problem is inside a JSON document, else the name of the record itself. ``level`` is
    ``"error"`` (the archive is not valid) or ``"warning"`` (worth knowing; still valid).
    """

    message: str
    where: str
    record: str | None = None
    level: str = "error"
    #: the problem is that loading needs ``allow_pickle=True`` (a warning: the file is sound,
    #: but ``load`` with the default ``allow_pickle=False`` refuses it)
    needs_pickle: bool = False
    #: ``message`` names its record already (``record 'x' ...``, as the zip layer words it)
    names_record: bool = False
    #: a problem with how pt2serde reads a document of another schema version (its upgrade):
    #: it says nothing about what that version's own readers accept
    upgrade_rule: bool = False

    @classmethod
    def from_error(cls, e: SerializeError, where: str, record: str | None) -> "Problem":
        """The problem a :class:`SerializeError` reports, found at ``where``; an error raised
        about a record (``e.record``, the zip layer's) already names it in its text."""
        return cls(str(e), where, record, names_record=e.record is not None)

    def __str__(self) -> str:
        return f"{self.message} @ {self.where}"

    def blocks_load(self, allow_pickle: bool = False) -> bool:
        """Whether ``load(allow_pickle=...)`` refuses the archive because of this problem."""
        return self.level == "error" or (self.needs_pickle and not allow_pickle)

    def error(self) -> SerializeError:
        """The problem as ``load`` raises it: ``record <name>: <message>``, and the wire path
        inside that record when there is one."""
        if self.where.startswith("$"):
            return SerializeError(f"record {self.record}: {self.message} - at `{self.where}`",
                                  record=self.record, path=self.where, problem=self.message)
        if self.names_record:
            return SerializeError(self.message, record=self.where)
        return SerializeError(f"record {self.where}: {self.message}", record=self.where, problem=self.message)


def first_error(problems: list[Problem]) -> None:
    """Raise the first problem that makes ``load`` refuse the archive (see :meth:`Problem.error`)."""
    for p in problems:
        if p.level == "error":
            raise p.error()


def key_path(key: str) -> str:
    """A dict key as a wire-path segment, as the codec writes it (``.fc.weight``)."""
    return f".{key}"
