"""Write the object-constant archives of ONE torch release into ``<release>/`` (run it with each).

``opaque_offset.pt2``: :class:`corpus_objects.WithOffset` (an opaque constant, ``opaque_obj_0``)
exported with ``strict=False`` and written by that release's ``torch.export.save``, next to
``opaque_offset.io.pt`` (``torch.save`` of ``{"input": x, "expected": eager output}``). Node stack
traces are dropped (they would name this machine's paths). Torchbind
constants need a torchbind class: the 2.13 CPU wheel ships torch's test library
(``libtorchbind_test.so``) and ``tests/bridge/test_torchbind.py`` writes those archives in-test;
the 2.14.1 wheel ships none, so no torchbind archive of 2.14 can be written without compiling one.

    python compat-corpus/objects/make_objects.py
"""

from __future__ import annotations

import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main() -> None:
    try:
        import torch._library.opaque_object  # noqa: F401  (opaque objects: PyTorch 2.10+)
    except ImportError:
        print(f"torch {torch.__version__} has no opaque objects: no object archives written")
        return
    import corpus_objects

    torch.manual_seed(0)
    folder = os.path.join(HERE, torch.__version__.split("+")[0])
    os.makedirs(folder, exist_ok=True)
    model = corpus_objects.WithOffset()
    x = torch.randn(2, 4)
    with torch.no_grad():
        expected = model(x)
    ep = torch.export.export(model, (x,), strict=False)
    for node in ep.graph.nodes:  # stack traces name this machine's paths: none is kept
        node.meta.pop("stack_trace", None)
    torch.export.save(ep, os.path.join(folder, "opaque_offset.pt2"))
    torch.save({"input": x, "expected": expected}, os.path.join(folder, "opaque_offset.io.pt"))
    print(f"wrote {folder}/opaque_offset.pt2")


if __name__ == "__main__":
    main()
