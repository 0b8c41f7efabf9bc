"""Which torch the bridge layer runs on: present, and inside the supported range.

pt2serde does not depend on torch in its package metadata (``pip install pt2serde`` never
installs or replaces a torch); the extra ``pt2serde[torch]`` declares the range below. So
the check happens here, once, the first time something needs torch: ``pt2serde.save``,
``load``, ``serialize`` ... (through ``pt2serde.__getattr__``) and ``pt2serde demo``.
The format layer and ``inspect``/``validate``/``diff`` never come here.

This module itself imports no torch until :func:`require_torch` is called.
"""

from __future__ import annotations

import os
import re
from types import ModuleType

__all__ = ["TORCH_MIN", "TORCH_BELOW", "SUPPORTED", "INSTALL_HINT", "require_torch", "check_version"]

# keep in step with pyproject.toml's `torch` extra (tests/repo/test_packaging.py checks both)
TORCH_MIN = (2, 13)
TORCH_BELOW = (2, 15)
SUPPORTED = f"torch>={TORCH_MIN[0]}.{TORCH_MIN[1]},<{TORCH_BELOW[0]}.{TORCH_BELOW[1]}"
INSTALL_HINT = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
# set to 1 to run on a torch outside the range anyway (e.g. a nightly), at your own risk
OVERRIDE_ENV = "PT2SERDE_ANY_TORCH"

_checked: ModuleType | None = None


def check_version(version: str) -> str | None:
    """The one-line complaint about torch ``version``, or ``None`` when it is supported."""
    from .. import __version__

    m = re.match(r"(\d+)\.(\d+)", str(version))
    if m and TORCH_MIN <= (int(m.group(1)), int(m.group(2))) < TORCH_BELOW:
        return None
    return (f"pt2serde {__version__} supports {SUPPORTED}, but torch {version} is installed: "
            f"install a supported torch (pip install 'pt2serde[torch]', or {INSTALL_HINT}), "
            f"or set {OVERRIDE_ENV}=1 to try this one anyway")


def require_torch() -> ModuleType:
    """Import torch and check its version; the module, or a one-line ``ImportError``.

    Raises ``ModuleNotFoundError`` (an ``ImportError``) saying how to install torch when it
    is absent, and ``ImportError`` naming the supported range when the running torch is
    outside it (unless ``PT2SERDE_ANY_TORCH=1``).
    """
    global _checked
    if _checked is not None:
        return _checked
    try:
        import torch
    except ModuleNotFoundError as e:
        if e.name != "torch":
            raise
        raise ModuleNotFoundError(
            f"this part of pt2serde needs torch ({SUPPORTED}), which is not installed: "
            f"install torch: {INSTALL_HINT}", name="torch") from None
    problem = check_version(getattr(torch, "__version__", "unknown"))
    if problem is not None:
        if os.environ.get(OVERRIDE_ENV) != "1":
            raise ImportError(problem, name="torch")
        import warnings

        warnings.warn(f"pt2serde: running on an unsupported torch {torch.__version__} ({OVERRIDE_ENV}=1)",
                      RuntimeWarning, stacklevel=3)
    _checked = torch
    return torch
