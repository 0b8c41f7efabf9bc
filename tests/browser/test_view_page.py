"""The page of ``pt2serde view`` in headless Chromium: what it shows, what a click, a tab and a search
do, that it is not blank, that it makes no request and runs nothing from the model, and its speed
at 20k nodes. The models are written by hand (models.py)."""

from __future__ import annotations

import json

import page_models as models
import png_colours as png
import pytest

from pt2serde.cli.term import escape
from pt2serde.cli.view_page import render_page

ALL_ATTRIBUTES_SAFE = """() => [...document.querySelectorAll('*')].flatMap((e) => [...e.attributes]
  .filter((a) => a.name.toLowerCase().startsWith('on') || /^\\s*javascript:/i.test(a.value)
     || ['href', 'src', 'xlink:href', 'action', 'formaction', 'style'].includes(a.name.toLowerCase()))
  .map((a) => e.tagName + ' ' + a.name + '=' + a.value))"""


def _clean(loaded):
    assert loaded.requests == []
    assert loaded.console_errors == []
    assert loaded.violations() == []
    assert loaded.dialogs == []
    assert loaded.page.evaluate("document.body.dataset.error") is None


def _texts(page, selector):
    return page.eval_on_selector_all(selector, "(es) => es.map((e) => e.textContent)")


def test_small_program_shows_every_node_and_labelled_edge(open_page):
    loaded = open_page(render_page(models.small_model()))
    page = loaded.page
    assert page.locator("#viewport .node").count() == models.SMALL_NODE_COUNT
    assert "15 nodes in 3 graph(s)" in page.text_content("#status")
    labels = _texts(page, "#viewport .elabel text")
    expected = [g["values"][e["value"]] for g in models.small_model()["graphs"] for e in g["edges"]]
    assert sorted(l for l in labels if l != "calls") == sorted(expected)
    assert labels.count("calls") == 2  # the cond node to each branch
    legend = page.text_content("#legend")
    for text in ("parameter", "buffer", "constant", "custom object", "token", "user input", "s0 in [2, 1024]",
                 "s1 in [1, \u221e]"):
        assert text in legend
    kinds = page.eval_on_selector_all("#viewport .node", "(es) => es.map((e) => e.getAttribute('class'))")
    for kind in ("parameter", "buffer", "constant", "user_input", "op", "output"):
        assert f"node k-{kind}" in kinds
    assert sorted(_texts(page, "#viewport .cluster text")) == ["\u25be act", "\u25be false_graph_0", "\u25be fc",
                                                              "\u25be true_graph_0"]
    _clean(loaded)


def test_a_weight_is_drawn_inside_the_module_that_uses_it(open_page):
    loaded = open_page(render_page(models.small_model()))
    page = loaded.page
    fc = page.locator("#viewport .cluster", has_text="fc").locator("rect").bounding_box()
    for key in ("n:g0/0", "n:g0/4"):  # p_fc_weight (no module of its own), linear (module fc)
        box = page.locator(f"#viewport .node[data-key='{key}']").bounding_box()
        assert fc["x"] <= box["x"] and box["x"] + box["width"] <= fc["x"] + fc["width"], key
        assert fc["y"] <= box["y"] and box["y"] + box["height"] <= fc["y"] + fc["height"], key
    _clean(loaded)


def test_a_value_with_many_users_is_drawn_again_next_to_each(open_page):
    loaded = open_page(render_page(models.fanout_model(10)))
    page = loaded.page
    assert page.locator("#viewport .node").count() == 13
    assert page.locator("#viewport .ref").count() == 10
    assert set(page.locator("#viewport .ref text").all_text_contents()) == {"\u2197 sym_size_int"}
    assert _texts(page, "#viewport .elabel text").count("sym_int s0") == 10  # every edge still labelled
    page.locator("#viewport .ref").nth(3).click()
    assert page.locator("#viewport .node[data-key='n:size'].selected").count() == 1
    assert "aten.sym_size.int" in page.text_content("#panel-body")
    few = open_page(render_page(models.fanout_model(8)), "few.html")
    assert few.page.locator("#viewport .ref").count() == 0
    _clean(loaded)


def test_click_on_a_node_shows_its_metadata(open_page):
    loaded = open_page(render_page(models.small_model()))
    page = loaded.page
    page.click("#viewport .node[data-key='n:g0/4']")
    panel = page.text_content("#panel-body")
    for text in ("aten.linear.default", "fc", "torch.nn.Fc", "torch.nn.modules.linear.Linear", "linear_1",
                 'File "model.py", line 12, in forward', "seq_nr", "p_fc_weight"):
        assert text in panel
    assert page.locator("#viewport .node[data-key='n:g0/4'].selected").count() == 1
    _clean(loaded)


def test_every_tab_of_the_side_panel(open_page):
    loaded = open_page(render_page(models.small_model()))
    page = loaded.page
    expected = {"signature": ["p_fc_weight", "fc.weight", "running_mean", "user_output"],
                "ranges": ["s0 in [2, 1024]", "s1 in [1, \u221e]"],
                "weights": ["fc.weight", "float32", "[4, 3]", "48", "weight_0", "fc2.weight", "constants"],
                "files": ["notes.txt", "12"],
                "verdict": ["2.13, 2.14", "valid: loads with pt2serde.load"]}
    for tab, texts in expected.items():
        page.click(f"#tabs button[data-tab='{tab}']")
        panel = page.text_content("#panel-body")
        assert all(t in panel for t in texts), (tab, panel)
    _clean(loaded)


def test_search_reveals_a_node_in_a_collapsed_module(open_page):
    loaded = open_page(render_page(models.big_model()))
    page = loaded.page
    target = "#viewport .node[data-key='n:g0/12345']"
    assert page.locator(target).count() == 0  # hidden in the collapsed block layers.61.block2
    page.fill("#search", "op_12345")
    page.press("#search", "Enter")
    assert page.locator(target + ".selected").count() == 1
    assert "op_12345" in page.text_content("#panel-body")
    assert page.text_content("#hits") == "1 of 1"
    box, canvas = page.locator(target).bounding_box(), page.locator("#graph").bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert abs(centre[0] - (canvas["x"] + canvas["width"] / 2)) < 5
    assert abs(centre[1] - (canvas["y"] + canvas["height"] / 2)) < 5
    _clean(loaded)


def test_a_click_expands_a_collapsed_module(open_page):
    loaded = open_page(render_page(models.big_model()))
    page = loaded.page
    before = page.locator("#viewport .node").count()
    group = page.locator("#viewport .node.group", has_text="layers.0.block1")
    assert group.locator("text").nth(1).text_content() == "50 nodes"
    group.click()
    assert page.locator("#viewport .node").count() == before - 1 + 50
    assert page.locator("#viewport .node[data-key='n:g0/50']").count() == 1
    assert page.locator("#panel-body button").text_content() == "collapse"
    _clean(loaded)


def test_zoom_buttons_and_wheel_change_the_scale(open_page):
    loaded = open_page(render_page(models.small_model()))
    page = loaded.page
    scale = lambda: float(page.get_attribute("#viewport", "transform").split("scale(")[1].rstrip(")"))  # noqa: E731
    start = scale()
    page.click("#zoom-in")
    assert scale() == pytest.approx(start * 1.25)
    page.click("#zoom-out")
    assert scale() == pytest.approx(start)
    page.mouse.move(300, 400)
    page.mouse.wheel(0, -300)
    assert scale() > start
    page.click("#fit")
    assert scale() == pytest.approx(start)
    shift = lambda: page.get_attribute("#viewport", "transform").split(") ")[0]  # noqa: E731
    before = shift()
    page.mouse.move(100, 850)
    page.mouse.down()
    page.mouse.move(160, 800, steps=5)
    page.mouse.up()
    x0, y0 = map(float, before[len("translate("):].split(","))
    x1, y1 = map(float, shift()[len("translate("):].split(","))
    assert (x1 - x0, y1 - y0) == pytest.approx((60, -50))
    _clean(loaded)


def test_a_subgraph_collapses_to_one_box_and_opens_again(open_page):
    loaded = open_page(render_page(models.small_model()))
    page = loaded.page
    page.locator("#viewport .cluster text", has_text="true_graph_0").click()
    assert page.locator("#viewport .node").count() == models.SMALL_NODE_COUNT - 3 + 1
    box = page.locator("#viewport .node.subgraph")
    assert box.locator("text").all_text_contents() == ["true_graph_0", "3 nodes"]
    box.click()
    assert page.locator("#viewport .node").count() == models.SMALL_NODE_COUNT
    page.click("#viewport .node[data-key='n:g0/7']")
    page.locator("#panel-body button", has_text="false_graph_0").click()
    assert page.locator("#viewport .node[data-key='n:g2/1']").count() == 1
    _clean(loaded)


def test_screenshot_is_not_blank(open_page):
    loaded = open_page(render_page(models.small_model()))
    shot = loaded.page.screenshot(clip={"x": 0, "y": 80, "width": 700, "height": 500})
    assert png.distinct_colours(shot) >= 20
    blank = open_page("<!DOCTYPE html><html><body></body></html>", "blank.html", wait_ready=False)
    assert png.distinct_colours(blank.page.screenshot(clip={"x": 0, "y": 80, "width": 700, "height": 500})) == 1


def test_diff_page_colours_changes_and_lists_them(open_page):
    loaded = open_page(render_page(models.diff_model()))
    page = loaded.page
    for status in ("added", "removed", "changed"):
        assert page.locator(f"#viewport .node.st-{status}").count() == 1
    bar = page.text_content("#diffbar")
    assert "a.pt2 \u2192 b.pt2: 3 change(s)" in bar
    assert "input x: f32[s0, 3] -> f32[s0, 5]" in bar and "s0: [2, 1024] -> [2, 2048]" in bar
    page.click("#tabs button[data-tab='changes']")
    assert _texts(page, "#panel-body td:nth-child(2)") == ["node relu removed", "node gelu added", "extra.bias added"]
    page.click("#tabs button[data-tab='weights']")
    assert page.locator("#panel-body tr.st-added").text_content().startswith("extra.bias")
    assert page.locator("#panel-body tr.st-changed").text_content().startswith("fc.weight")
    _clean(loaded)


@pytest.mark.parametrize("nested", [True, False], ids=["modules", "flat"])
def test_20k_nodes_ready_in_under_3s_with_a_bounded_view(open_page, nested):
    loaded = open_page(render_page(models.big_model(20_000, nested)))
    boxes = loaded.page.locator("#viewport .node").count()
    assert 50 <= boxes <= 200  # view.js LIMIT
    assert "20002 nodes" in loaded.page.text_content("#status")
    assert loaded.ready_ms() < 3000, loaded.ready_ms()
    _clean(loaded)


def click_everything(page) -> str:
    """Click every box and every tab, search; the text the page showed on the way."""
    seen = [page.text_content("#top"), page.text_content("#viewport")]
    for i in range(page.locator("#viewport .node").count()):
        page.locator("#viewport .node").nth(i).click()
        seen.append(page.text_content("#panel-body"))
    for tab in page.eval_on_selector_all("#tabs button", "(es) => es.map((e) => e.dataset.tab)"):
        page.click(f"#tabs button[data-tab='{tab}']")
        seen.append(page.text_content("#panel-body"))
    page.fill("#search", "script")
    page.press("#search", "Enter")
    return "\n".join(seen)


def assert_ran_nothing(loaded) -> None:
    """No script from the model ran, no dialog opened, no handler or URL attribute exists."""
    page = loaded.page
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert loaded.dialogs == []
    assert page.evaluate(ALL_ATTRIBUTES_SAFE) == ["LINK href=data:,"]  # the template's own empty icon
    assert page.evaluate("document.scripts.length") == 3  # the model, dagre, view.js
    assert page.locator("img, a, iframe, object, embed, form, base, link:not([rel=icon])").count() == 0


def test_hostile_strings_stay_text(open_page):
    model = models.hostile_model()
    loaded = open_page(render_page(model))
    page = loaded.page
    click_everything(page)
    assert_ran_nothing(loaded)
    assert page.title() == model["title"]
    assert page.text_content("#title") == model["title"]
    page.click(f"#viewport .node[data-key={json.dumps('n:' + models.HOSTILE[1])}]")
    page.click("#tabs button[data-tab='node']")
    panel = page.text_content("#panel-body")
    assert all(h in panel for h in models.HOSTILE if "\x00" not in h)
    page.click("#tabs button[data-tab='verdict']")
    assert all(escape(h) in page.text_content("#panel-body") for h in models.HOSTILE)  # controls shown as escapes
    _clean(loaded)


def test_the_checks_see_what_they_look_for(open_page):
    """An injected handler and image: CSP stops both and reports it; without the CSP the request is seen."""
    page_text = render_page(models.small_model())
    injected = '<img src="http://127.0.0.1:9/x.png" onerror="window.__pwned=1">'
    loaded = open_page(page_text.replace("<body>", "<body>" + injected), "csp.html")
    assert loaded.page.evaluate("typeof window.__pwned") == "undefined"
    assert any("img-src" in v for v in loaded.violations())
    assert loaded.requests == []
    no_csp = "\n".join(line for line in page_text.split("\n") if "Content-Security-Policy" not in line)
    bare = open_page(no_csp.replace("<body>", "<body>" + injected), "bare.html")
    assert bare.requests == ["http://127.0.0.1:9/x.png"]
    assert bare.page.evaluate("window.__pwned") == 1


@pytest.mark.parametrize("case", list(models.malformed_models()))
def test_malformed_models_still_draw(open_page, case):
    loaded = open_page(render_page(models.malformed_models()[case]))
    click_everything(loaded.page)
    assert loaded.page.locator("#viewport .node").count() <= 200
    _clean(loaded)
