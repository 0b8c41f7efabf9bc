"""What is wrong with an archive, as ``validate`` lists it and ``load`` raises it.

The torch-free model of an archive (:mod:`pt2serde.format.contents`,
:mod:`pt2serde.format.tensor_entries`) collects :class:`Problem` objects instead of raising, so
that ``validate`` reports all of them and ``inspect`` shows what it could read; ``load``
raises the first that blocks it (:func:`first_error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from .schema_decoder import MAX_PROBLEMS, STOPPED_TEXT
from ..errors import SerializeError

__all__ = ["Problem", "first_error", "key_path", "CappedProblems", "ProblemLimit", "capped", "name_text",
           "MAX_NAME_TEXT"]

#: A name longer than this is shortened in a problem's message (:func:`name_text`).
MAX_NAME_TEXT = 200


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


def name_text(name: str | None) -> str | None:
    """A value name as a problem quotes it: whole up to :data:`MAX_NAME_TEXT` characters, else
    its start and its length (a file's names must not make the report as big as the file)."""
    if name is None or len(name) <= MAX_NAME_TEXT:
        return name
    return f"{name[:MAX_NAME_TEXT // 2]}... ({len(name)} characters)"


class ProblemLimit(Exception):
    """Raised by :class:`CappedProblems` at the first error past :data:`MAX_PROBLEMS`: the walk
    filling it stops there (:func:`capped` catches it)."""


class CappedProblems(list):
    """The problems of one program, at most :data:`MAX_PROBLEMS` (the schema walk's limit, one
    rule): an error past it raises :class:`ProblemLimit`; a warning past it is dropped (the walk
    goes on, so that an error further on still makes the file invalid), except one that says
    loading needs unpickling (it changes the verdict of ``load(allow_pickle=False)``)."""

    dropped = False

    def append(self, p: Problem) -> None:
        if len(self) >= MAX_PROBLEMS and not p.needs_pickle:
            if p.level == "error":
                raise ProblemLimit
            self.dropped = True
            return
        super().append(p)

    def extend(self, problems: Iterable[Problem]) -> None:
        for p in problems:
            self.append(p)

    def __iadd__(self, problems: Iterable[Problem]) -> "CappedProblems":
        self.extend(problems)
        return self


def capped(record: str | None, fill: Callable[[CappedProblems], None]) -> list[Problem]:
    """What ``fill`` appends to a :class:`CappedProblems`, and when it passed the limit, a last
    problem saying so (:data:`schema_decoder.STOPPED_TEXT`; an error when the walk stopped at an
    error)."""
    out = CappedProblems()
    try:
        fill(out)
    except ProblemLimit:
        return [*out, Problem(STOPPED_TEXT, "$", record)]
    if out.dropped:
        return [*out, Problem(STOPPED_TEXT, "$", record, level="warning")]
    return list(out)
