"""The format layer: what a PT2 file holds, read, checked and written without torch.

Nothing in this folder imports torch or sympy (``tests/repo/test_layering.py`` checks every module
in it), and nothing here runs anything from a file: the wire codec, the archive container,
the upgraders, the expression grammar, the safe pickle reader and the checks that ``load``
and ``validate`` share. It imports only ``pt2serde.schema``, ``pt2serde.errors`` and itself.
"""
