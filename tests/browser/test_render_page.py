"""``render_page`` without a browser: the CSP meta tag and its hashes, the one JSON block and its
escaping, the escaped title, one pass over the template."""

from __future__ import annotations

import json
import re

import page_models as models

from pt2serde.cli.view_page import csp_hash, model_json, render_page

INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
STYLE = re.compile(r"<style>(.*?)</style>", re.S)
MODEL_BLOCK = re.compile(r'<script type="application/json" id="model">(.*?)</script>', re.S)


def _csp(page: str) -> dict:
    content = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page).group(1)
    content = content.replace("&#x27;", "'")
    return {d.split()[0]: d.split()[1:] for d in content.split("; ")}


def test_csp_is_first_in_head_and_allows_exactly_the_inline_blocks():
    page = render_page(models.small_model())
    head = page.split("<head>", 1)[1]
    assert head.lstrip().startswith('<meta http-equiv="Content-Security-Policy"')
    csp = _csp(page)
    scripts = INLINE_SCRIPT.findall(page)
    assert len(scripts) == 2 and "var dagre=" in scripts[0] and "view_page inlines this file" in scripts[1]
    assert "Permission is hereby granted" in scripts[0]  # dagre's MIT notice travels with it
    assert csp == {"default-src": ["'none'"], "script-src": [csp_hash(s) for s in scripts],
                   "style-src": [csp_hash(STYLE.search(page).group(1))], "img-src": ["data:"],
                   "base-uri": ["'none'"], "form-action": ["'none'"]}
    assert "sourceMappingURL" not in page
    assert not re.search(r"\son[a-z]+\s*=", page.split('id="model">')[0])  # no inline handler in the template


def test_hostile_model_stays_inside_one_json_block():
    model = models.hostile_model()
    page = render_page(model)
    blocks = MODEL_BLOCK.findall(page)
    assert len(blocks) == 1
    text = blocks[0]
    assert not any(c in text for c in "<>&") and text.isascii()
    assert json.loads(text) == model
    assert page.count("</script>") == 3 and page.count("<!--") == 0
    title = re.search(r"<title>(.*)</title>", page).group(1)
    assert title == "&lt;/script&gt;&lt;script&gt;window.__pwned=2&lt;/script&gt;&lt;script&gt;window.__pwned=1" \
                    "&lt;/script&gt;"


def test_placeholders_in_the_model_are_not_substituted():
    model = models.small_model()
    model["title"] = "{{MODEL}} {{SCRIPTS}}"
    page = render_page(model)
    assert "<title>{{MODEL}} {{SCRIPTS}}</title>" in page
    assert json.loads(MODEL_BLOCK.search(page).group(1))["title"] == "{{MODEL}} {{SCRIPTS}}"


def test_model_json_escapes_what_could_end_the_block():
    assert model_json({"a": "</script><!--&\u2028"}) == '{"a":"\\u003c/script\\u003e\\u003c!--\\u0026\\u2028"}'


def test_a_lone_surrogate_in_the_title_becomes_a_replacement_character():
    model = models.small_model()
    model["title"] = "a\udc80b.pt2"
    page = render_page(model)
    assert "<title>a\ufffd\ufffd\ufffdb.pt2</title>" in page  # one per byte of the surrogate, as UTF-8 decoders do
    page.encode("utf-8")
    assert json.loads(MODEL_BLOCK.search(page).group(1))["title"] == "a\udc80b.pt2"
