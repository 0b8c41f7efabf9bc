import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(1, os.path.join(os.path.dirname(__file__), "hostile"))  # the hostile cases, for the CLI tests
pytest.register_assert_rewrite("checks")


# ------------------------------------------------------------------ markers: torch's test library
# Tests marked `torchbind_test_lib` need the torchbind test classes (torch.classes._TorchScriptTesting),
# which live in torch's own test library libtorchbind_test.so. The CPU wheels of 2.13 ship it; the
# wheels of 2.14 on PyPI do not, and the feature these tests cover (torchbind objects in programs)
# cannot exist without it. Where it is missing they are deselected, and the summary says so: a
# deselection by this one named reason, never a skip. `-m torchbind_test_lib` runs them anyway.

TORCHBIND_TEST_LIB = "libtorchbind_test.so"
_deselected_for_lib: list = []


def _torchbind_test_lib_present() -> bool:
    """Whether ``torch.testing._internal.torchbind_impls`` would find the library (where it looks)."""
    from torch.testing._internal.common_utils import find_library_location

    return find_library_location(TORCHBIND_TEST_LIB).exists()


def _uses_torchbind_program(item) -> bool:
    """A test parametrized with a corpus program whose setup loads the torchbind test classes."""
    programs = sys.modules.get("programs")
    callspec = getattr(item, "callspec", None)
    if programs is None or callspec is None:
        return False
    needs = {name for name, p in programs.CORPUS.items() if p.setup is programs._torchbind}
    values = [v for value in callspec.params.values() for v in (value if isinstance(value, tuple) else (value,))]
    return any(isinstance(v, str) and v in needs for v in values)


def pytest_collection_modifyitems(config, items):
    marker = pytest.mark.torchbind_test_lib
    for item in items:
        if item.get_closest_marker("torchbind_test_lib") is None and _uses_torchbind_program(item):
            item.add_marker(marker)
    marked = [item for item in items if item.get_closest_marker("torchbind_test_lib") is not None]
    if not marked or "torchbind_test_lib" in (config.getoption("markexpr") or "") or _torchbind_test_lib_present():
        return
    _deselected_for_lib[:] = marked
    config.hook.pytest_deselected(items=marked)
    items[:] = [item for item in items if item.get_closest_marker("torchbind_test_lib") is None]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _deselected_for_lib:
        import torch

        terminalreporter.write_line(
            f"deselected {len(_deselected_for_lib)} tests marked torchbind_test_lib: torch {torch.__version__} "
            f"has no {TORCHBIND_TEST_LIB} (torch's torchbind test library), which they need")
