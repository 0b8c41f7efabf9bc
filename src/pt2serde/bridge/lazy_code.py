"""A loaded program's ``graph_module`` writes and compiles its Python code when first needed.

``ExportedProgram.__init__`` builds its ``GraphModule`` eagerly: it generates the Python source
of the whole graph and ``compile()``\\ s it. That is the single largest piece of PyTorch's work in
a load (about 135 ms of a 5,000-node program, 20 ms of Swin-T), and most loads never use it:
``ep.module()`` builds a new module from a copy of the graph and generates its own code;
``unflatten``, ``run_decompositions`` and serializers read the graph, not the code.

:func:`deferred_codegen` makes the constructor build a ``torch.fx._lazy_graph_module._LazyGraphModule``
instead, for the calling thread only. It is PyTorch's own subclass of ``GraphModule`` (Inductor
uses it for the same reason): ``ep.graph_module.code``, ``str(...)``, a call, pickling or
``print_readable`` generate the same code that an eager build would have, at that moment.
``isinstance(ep.graph_module, torch.fx.GraphModule)`` still holds.

How: while at least one thread is inside :func:`deferred_codegen`, the module-level
``torch.export.exported_program._create_graph_module_for_export`` (looked up at call time by
the constructor) is our wrapper. The wrapper builds a lazy module only for a thread that is
inside the context and otherwise calls PyTorch's function, so a program another thread
builds meanwhile is built as before. The last thread out puts PyTorch's function back (unless
someone replaced ours meanwhile). Where the hook is missing (another PyTorch release), loads
build eagerly as before: slower, never wrong.

Code generation on first use takes a lock (``_LoadedGraphModule``): threads that first use one
loaded program at once must not write its code together.

Known limit: code of someone else that also replaces that torch function, and whose
replace-and-restore interleaves with a load's, can be left installed (as any two patches of one
function that do not nest can); it is never our wrapper that is left behind.

The code that the lazy module generates later comes from the same graph that
``format.codegen_fields`` checked before torch saw any of it, so deferring changes when the
code is written, not what it may contain.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["deferred_codegen"]

_HOOK = "_create_graph_module_for_export"
_lock = threading.Lock()
_local = threading.local()
_users = 0  # threads inside deferred_codegen (guarded by _lock)
_delegate: Any = None  # the function ours last replaced; kept, for callers that still hold ours


_codegen_lock = threading.RLock()  # fx's code generation renames the graph's nodes while it runs
_loaded_class: Any = None


def _loaded_graph_module_class() -> type:
    """``_LazyGraphModule`` whose code is written by one thread at a time.

    fx writes a graph's code by swapping a naming function into every node of the graph and
    back; two threads doing that to one graph mix their names, and the garbled code stays
    compiled into ``forward``. An eager build wrote it once, inside ``load``; deferred, the
    first use may come from several threads at once (a server's workers), so it takes a lock.
    """
    global _loaded_class
    if _loaded_class is None:
        from torch.fx._lazy_graph_module import _LazyGraphModule

        class _LoadedGraphModule(_LazyGraphModule):
            def real_recompile(self) -> None:
                if self._needs_recompile():
                    with _codegen_lock:
                        if self._needs_recompile():  # another thread may have written it meanwhile
                            self._real_recompile()

            def _real_recompile(self) -> Any:
                with _codegen_lock:
                    return super()._real_recompile()

            def print_readable(self, *args: Any, **kwargs: Any) -> Any:
                with _codegen_lock:
                    return super().print_readable(*args, **kwargs)

        _loaded_class = _LoadedGraphModule
    return _loaded_class


def _build_lazy_or_eager(root: Any, graph: Any) -> Any:
    if getattr(_local, "depth", 0):
        return _loaded_graph_module_class()(root, graph)
    return _delegate(root, graph)


def _install() -> None:
    global _users, _delegate
    import torch.export.exported_program as epm

    with _lock:
        if _users == 0:
            current = getattr(epm, _HOOK, None)
            # None: no such hook in this release, loads build eagerly. Ours: put back by someone
            # who had saved it; _delegate is still what it replaced.
            if current is not None and current is not _build_lazy_or_eager:
                _delegate = current
                setattr(epm, _HOOK, _build_lazy_or_eager)
        _users += 1


def _uninstall() -> None:
    global _users
    import torch.export.exported_program as epm

    with _lock:
        _users -= 1
        if _users == 0 and getattr(epm, _HOOK, None) is _build_lazy_or_eager:
            setattr(epm, _HOOK, _delegate)


@contextmanager
def deferred_codegen() -> Iterator[None]:
    """Inside: an ``ExportedProgram`` this thread constructs gets a lazily compiled graph module."""
    _install()
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1
        _uninstall()
