"""Memory measurements for tests: how far a block of code raised this process' RSS."""

from __future__ import annotations


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} in /proc/self/status")


def rss() -> int:
    """Resident set size now, in bytes."""
    return _status("VmRSS")


class PeakGrowth:
    """``with PeakGrowth() as m: ...`` then ``m.bytes``: the peak RSS during the block minus
    the RSS before it. The peak (VmHWM) is reset on entry through ``/proc/self/clear_refs``
    (Linux >= 4.0); where the kernel refuses that, the growth of the current RSS is used."""

    bytes: int = 0

    def __enter__(self) -> PeakGrowth:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._reset = True
        except OSError:
            self._reset = False
        self._before = rss()
        return self

    def __exit__(self, *exc) -> None:
        self.bytes = (_status("VmHWM") if self._reset else rss()) - self._before

    def __repr__(self) -> str:
        return f"PeakGrowth({self.bytes >> 20} MiB)"
