"""Make ``docs/view.png``, the README's picture of ``pt2serde view``: a small GPT-2 (transformers'
``GPT2LMHeadModel``, 2 layers, random weights, nothing downloaded) exported with a dynamic sequence
length, saved with ``pt2serde.save``, drawn by ``pt2serde view`` and photographed in headless
Chromium (``/usr/bin/chromium``, as the browser tests use it) with one attention block expanded.

    PYTHONPATH=src .venv/bin/python tools/make_view_screenshot.py [--out docs/view.png] [--keep DIR]

Needs torch, transformers (the ``bench`` extra) and playwright (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def export_gpt2(path: pathlib.Path) -> None:
    import torch
    import transformers

    import pt2serde

    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=128,
                                     bos_token_id=0, eos_token_id=0, use_cache=False)
    module = transformers.GPT2LMHeadModel(config).eval()
    tokens = torch.randint(0, 1000, (1, 16))
    seq = torch.export.Dim("seq", min=2, max=128)
    program = torch.export.export(module, (), {"input_ids": tokens}, dynamic_shapes={"input_ids": {1: seq}},
                                  strict=False)
    pt2serde.save(program, str(path))


def photograph(page: pathlib.Path, out: pathlib.Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1500, "height": 950}, device_scale_factor=1)
        tab.goto(page.as_uri())
        tab.wait_for_selector("body[data-ready='1']")
        attention = tab.locator("#viewport .node.group", has_text="attn").first
        if attention.count():
            attention.click()
        tab.fill("#search", "scaled_dot_product_attention")
        tab.press("#search", "Enter")
        tab.screenshot(path=str(out))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "view.png"))
    parser.add_argument("--keep", help="a folder to keep the archive and the page in")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        archive, page = folder / "gpt2-small.pt2", folder / "gpt2-small.html"
        export_gpt2(archive)
        subprocess.run([sys.executable, "-m", "pt2serde", "view", str(archive), "-o", str(page)], check=True)
        photograph(page, pathlib.Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
