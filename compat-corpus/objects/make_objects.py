"""Write the object-constant archives of ONE torch release into ``<release>/`` (run it with each).

``opaque_offset.pt2``: :class:`corpus_objects.WithOffset` (an opaque constant, ``opaque_obj_0``)
exported with ``strict=False`` and written by that release's ``torch.export.save``, next to
``opaque_offset.io.pt`` (``torch.save`` of ``{"input": x, "expected": eager output}``). Torchbind
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
import corpus_objects  # noqa: E402


def main() -> None:
    torch.manual_seed(0)
    folder = os.path.join(HERE, torch.__version__.split("+")[0])
    os.makedirs(folder, exist_ok=True)
    model = corpus_objects.WithOffset()
    x = torch.randn(2, 4)
    with torch.no_grad():
        expected = model(x)
    ep = torch.export.export(model, (x,), strict=False)
    torch.export.save(ep, os.path.join(folder, "opaque_offset.pt2"))
    torch.save({"input": x, "expected": expected}, os.path.join(folder, "opaque_offset.io.pt"))
    print(f"wrote {folder}/opaque_offset.pt2")


if __name__ == "__main__":
    main()
