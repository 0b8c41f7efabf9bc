"""The torch bridge: ``ExportedProgram`` and its tensors, symbols and graphs to and from the format.

Every module here except :mod:`pt2serde.bridge.torch_check` imports torch; they read files
only through :mod:`pt2serde.format`, whose checks run first. The public entry points
(``pt2serde.save``, ``load``, ``serialize``, ...) are loaded from here on first use.
"""
