"""The page of ``pt2serde view`` and ``diff --html``: one self-contained HTML document.

:func:`render_page` turns a view model (the plain dict that ``view_model`` builds; its format is
described there) into one HTML file that works offline and makes no network request: the
stylesheet, the vendored layout library (``static/dagre.min.js``, see ``static/VENDORED.md``)
and the page's script (``static/view_groups.js`` then ``static/view.js``) are inlined, the model travels as data.

Safe by construction, whatever the model holds (nothing in it is trusted):

- the model goes in ONE ``<script type="application/json">`` block as ``json.dumps`` with
  ``ensure_ascii``, then ``<``, ``>`` and ``&`` as ``\\u003c``, ``\\u003e``, ``\\u0026``: no
  ``</script>`` or ``<!--`` can end or bend that block; the page reads it with ``JSON.parse``
  and puts every string into the DOM as text (``view.js``);
- the title, the only model text placed in the HTML itself, goes through ``html.escape``;
- a ``Content-Security-Policy`` meta tag, first in ``<head>``, allows the inline scripts and
  the stylesheet by their sha256 only (computed here from the exact text inserted): no other
  script, no inline event handler, no ``eval``, no request of any kind (``default-src 'none'``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib import resources

from .term import HIDDEN_RANGES

__all__ = ["render_page", "csp_hash", "model_json"]

# the source-map comment at the end of the vendored bundle: left out of pages (a browser's
# developer tools would otherwise look for the map next to the page)
_SOURCE_MAP = re.compile(r"\n?//# sourceMappingURL=[^\n]*\n?\Z")
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
# inline text that would end an inline block early or open an HTML comment in it
_BREAKOUTS = ("</script", "</style", "<!--")


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _inline(name: str) -> str:
    """A static file's text as it goes inline; refuses one that could end its own block."""
    text = _SOURCE_MAP.sub("\n", _static(name))
    lowered = text.lower()
    bad = [b for b in _BREAKOUTS if b in lowered]
    if bad:
        raise ValueError(f"static/{name} holds {bad[0]!r}: it cannot be inlined")
    return text


def _layout_library() -> str:
    """The vendored bundle, its MIT license notice first (the bundle's own comment names a
    LEGAL.txt file that a page cannot carry)."""
    notice = _static("LICENSE-dagre")
    if "*/" in notice:
        raise ValueError("static/LICENSE-dagre holds '*/': it cannot go in a comment")
    header = "/*! @dagrejs/dagre, with @dagrejs/graphlib (static/VENDORED.md)\n"
    return header + notice + "*/\n" + _inline("dagre.min.js")


def _text(value) -> str:
    """``value`` as text that encodes to UTF-8: a lone surrogate (a file's name may hold one)
    becomes U+FFFD, as a browser would show it."""
    return str(value).encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def csp_hash(text: str) -> str:
    """The CSP source expression (``'sha256-...'``) that allows an inline block holding ``text``."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def model_json(model: dict) -> str:
    """``model`` as the text of a ``<script type="application/json">`` block: strict JSON, ASCII,
    with ``<``, ``>`` and ``&`` escaped, so no ``</script>`` or ``<!--`` can appear in it."""
    text = json.dumps(model, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(model: dict) -> str:
    """The whole HTML document of ``model`` (a view model: ``kind`` "program" or "diff")."""
    style = _inline("view.css")
    # one page script; the table of what is shown escaped comes first, as data (cli/term.py owns it)
    hidden = "const HIDDEN_RANGES = " + json.dumps([list(r) for r in HIDDEN_RANGES], separators=(",", ":")) + ";\n"
    scripts = [_layout_library(), hidden + _inline("view_groups.js") + _inline("view.js")]
    policy = "; ".join((
        "default-src 'none'",
        "script-src " + " ".join(csp_hash(s) for s in scripts),
        "style-src " + csp_hash(style),
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ))
    parts = {
        "CSP": html.escape(policy, quote=True),
        "TITLE": html.escape(_text(model.get("title", "")) if isinstance(model, dict) else ""),
        "STYLE": style,
        "MODEL": model_json(model),
        "SCRIPTS": "".join(f"<script>{s}</script>\n" for s in scripts),
    }
    # one pass over the template: text inserted for one placeholder is never searched again
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], _static("template.html"))
