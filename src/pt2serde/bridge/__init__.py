"""The torch bridge: ``ExportedProgram`` and its tensors, symbols and graphs to and from the format.

The modules here build or read torch objects (a few, such as :mod:`pt2serde.bridge.torch_check`,
``argcheck``, import torch only when called); they read files
only through :mod:`pt2serde.format`, whose checks run first. The public entry points
(``pt2serde.save``, ``load``, ``serialize``, ...) are loaded from here on first use.
"""
