"""The PyTorch releases pt2serde knows: which schema each writes and reads, and what its
stock loader accepts (torch-free). The one table of that history:
:mod:`pt2serde.format.upgrade` derives from it which releases read each schema pt2serde can
write (:data:`~pt2serde.format.upgrade.READERS`), :mod:`pt2serde.format.compat_readers`
which releases can read an archive.

The rows are the measured behaviour of the real releases (the compat corpus,
``compat-corpus/`` in the repository). PyTorch 2.10 - 2.12 are not listed: there are no
measurements of them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Release", "RELEASES", "releases_reading"]

V = tuple[int, int]


@dataclass(frozen=True)
class Release:
    """What one PyTorch release's stock loader reads."""

    name: str
    schema: V  # the schema version it writes and knows
    pt2_storages: frozenset[str]  # payload storages it reads in the PT2 layout ("raw", "torch_save")
    strict_fields: bool  # builds records with exactly its own fields: an unknown field fails
    raw_int_params: bool = True  # rebuilds a non-floating Parameter from a raw record (2.9 cannot)

    @property
    def reads_pt2(self) -> bool:
        return bool(self.pt2_storages)


_BOTH = frozenset({"raw", "torch_save"})
#: oldest first
RELEASES: tuple[Release, ...] = (
    Release("2.5", (7, 3), frozenset(), True),
    Release("2.6", (8, 2), frozenset(), True),
    Release("2.7", (8, 7), frozenset(), True),
    Release("2.8", (8, 8), frozenset({"torch_save"}), True),
    Release("2.9", (8, 14), _BOTH, False, raw_int_params=False),
    Release("2.13", (8, 20), _BOTH, False),
    Release("2.14", (8, 20), _BOTH, False),
)


def releases_reading(version: V) -> tuple[str, ...]:
    """The names of the releases whose schema is ``version``, oldest first."""
    return tuple(r.name for r in RELEASES if r.schema == version)
