"""Load, save and serialize real architectures with pt2serde and with PyTorch, in one run.

The programs are transformers models built from their configs with seeded random weights
(nothing is downloaded): ResNet-18, ViT-B/16, Swin-T, ConvNeXt-T, EfficientNet-B0, GPT-2 124M,
BERT-base at full size; a Llama-style decoder, the T5-small encoder, a Whisper encoder and a
Mixtral-style MoE at sizes a 2-core machine exports in seconds. The vision models are
transformers' own (``ResNetModel``, ``ViTModel``, ...): torchvision and timm do not import beside
every torch build. Each model is exported with ``torch.export.export(..., strict=False)`` once
with static shapes and once with a dynamic batch (and sequence, for text) ``Dim``, and written
with ``torch.export.save``; both libraries read that same file. For every program it reports,
as PyTorch time / pt2serde time (above 1: pt2serde is faster):

* ``fresh load``: ``load(path)`` in a fresh ``python -c`` process that imported torch (and
  ``torch.export``, ``pt2serde``'s lazy facade) before the clock; the two libraries alternate;
* ``warm load``: in this process, after one warm-up load of the same file;
* ``warm floor``: of that warm load, the time pt2serde spends inside PyTorch calls that any
  loader of the format makes (the ``ExportedProgram`` constructor, FX nodes, fake tensors,
  symbolic ints); PyTorch's warm load / that time is the best ratio any loader could reach;
* ``fresh first output``: the same fresh process, from before ``load`` to after
  ``ep.module()`` and its first forward (no_grad);
* ``peak RSS``: peak RSS growth during that fresh ``load`` (VmHWM after minus VmRSS before,
  VmHWM reset through /proc/self/clear_refs), also shown as % of the weight bytes;
* ``serialize`` / ``deserialize``: in memory, with weights (``pt2serde.serialize`` against
  ``torch._export.serde.serialize.serialize``; each side deserializes its own artifact).

Times are medians of ``--repeat`` runs. Before measuring, each program is loaded once with
each library and run: the outputs must equal the exported program's, and the JSON document
``pt2serde.save`` writes must be byte-identical to PyTorch's (the ``checks`` table).
``--no-measure`` stops there. Needs the ``bench`` extra (``pip install -e '.[bench]'``)::

    .venv/bin/python bench/models.py [--quick] [--models gpt2,bert] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import logging
import math
import os
import statistics
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass
from typing import Callable

import torch
import torch.utils._pytree

from common import alternating_medians, geomean, run_python, table, torch_floor, weights_bytes

MiB = 1 << 20
BATCH = {0: "batch"}
TOKENS = {0: "batch", 1: "seq"}
DIM_RANGES = {"batch": (1, 64), "seq": (2, 512)}


@dataclass(frozen=True)
class Model:
    """One architecture: its transformers class and config, the input it is exported with, and
    which dimensions of that input the dynamic-shape variant leaves free."""

    make: Callable[[], torch.nn.Module]
    input_name: str
    example: Callable[[], torch.Tensor]
    dynamic: dict[int, str]


def _hf(cls: str, config: str, **options) -> Callable[[], torch.nn.Module]:
    def make():
        import transformers

        return getattr(transformers, cls)(getattr(transformers, config)(**options))

    return make


def _whisper_encoder() -> torch.nn.Module:
    import transformers
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    return WhisperEncoder(transformers.WhisperConfig(
        num_mel_bins=80, d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536,
        max_source_positions=100))


def _image(size: int = 224) -> Callable[[], torch.Tensor]:
    return lambda: torch.randn(2, 3, size, size)


def _tokens(vocab: int, seq: int = 16) -> Callable[[], torch.Tensor]:
    return lambda: torch.randint(0, vocab, (2, seq))


MODELS = {
    "resnet18": Model(_hf("ResNetModel", "ResNetConfig", layer_type="basic", depths=[2, 2, 2, 2],
                          hidden_sizes=[64, 128, 256, 512]), "pixel_values", _image(), BATCH),
    "vit-b16": Model(_hf("ViTModel", "ViTConfig"), "pixel_values", _image(), BATCH),
    "swin-t": Model(_hf("SwinModel", "SwinConfig"), "pixel_values", _image(), BATCH),
    "convnext-t": Model(_hf("ConvNextModel", "ConvNextConfig"), "pixel_values", _image(), BATCH),
    "efficientnet-b0": Model(_hf("EfficientNetModel", "EfficientNetConfig", width_coefficient=1.0,
                                 depth_coefficient=1.0, hidden_dim=1280, image_size=224),
                             "pixel_values", _image(), BATCH),
    "gpt2-124M": Model(_hf("GPT2LMHeadModel", "GPT2Config", use_cache=False), "input_ids", _tokens(50257), TOKENS),
    "bert-base": Model(_hf("BertModel", "BertConfig"), "input_ids", _tokens(30522), TOKENS),
    "llama": Model(_hf("LlamaForCausalLM", "LlamaConfig", vocab_size=32000, hidden_size=512, intermediate_size=1376,
                       num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2, use_cache=False),
                   "input_ids", _tokens(32000), TOKENS),
    "t5-encoder": Model(_hf("T5EncoderModel", "T5Config"), "input_ids", _tokens(32128), TOKENS),
    "whisper-encoder": Model(_whisper_encoder, "input_features", lambda: torch.randn(2, 80, 200), BATCH),
    "mixtral-moe": Model(_hf("MixtralForCausalLM", "MixtralConfig", vocab_size=1000, hidden_size=256,
                             intermediate_size=512, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
                             num_local_experts=4, num_experts_per_tok=2, use_cache=False),
                         "input_ids", _tokens(1000), TOKENS),
}
QUICK = ("resnet18", "whisper-encoder", "mixtral-moe")

# metric -> title (seconds, except peak_rss: bytes); the ratio is always PyTorch / pt2serde
METRICS = {
    "fresh_load": "load, fresh process",
    "warm_load": "load, warm process",
    "warm_floor": "load, warm: PyTorch's own calls inside pt2serde's load (ratio: the bound no loader passes)",
    "fresh_first_output": "load + module() + first forward, fresh process",
    "peak_rss": "peak RSS growth during load, fresh process",
    "serialize": "serialize in memory, with weights",
    "deserialize": "deserialize in memory, with weights",
}

# One fresh measurement: imports before the clock, then load, module() and the first forward.
CHILD = """
import json, sys, time, warnings, logging
warnings.filterwarnings("ignore"); logging.disable(logging.CRITICAL)
import torch, torch.export, pt2serde
from common import peak_growth, peak_start
lib, path, inputs, modules = sys.argv[1:5]
for m in modules.split(","):  # the model's code, as the user's program has it: its output types are pytree nodes
    __import__(m)
load = pt2serde.load if lib == "pt2serde" else torch.export.load
kwargs = torch.load(inputs, weights_only=True)
start = peak_start()
t0 = time.perf_counter()
ep = load(path)
t1 = time.perf_counter()
growth = peak_growth(start)
with torch.no_grad():
    ep.module()(**kwargs)
t2 = time.perf_counter()
print(json.dumps({"fresh_load": t1 - t0, "fresh_first_output": t2 - t0, "peak_rss": growth}))
"""


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)


def export_both(name: str) -> tuple[list[tuple[str, torch.export.ExportedProgram, dict]], str]:
    """The model's static-shape and dynamic-shape programs (the latter left out, with a note,
    where export refuses it), with the inputs they were exported with; and the modules that
    define the model and its output types (a fresh process imports them before the clock, as
    the user's program would: the output types are registered pytree nodes)."""
    from torch.export import Dim

    spec = MODELS[name]
    torch.manual_seed(0)
    module = spec.make().eval()
    kwargs = {spec.input_name: spec.example()}
    dims = {spec.input_name: {axis: Dim(d, min=DIM_RANGES[d][0], max=DIM_RANGES[d][1])
                              for axis, d in spec.dynamic.items()}}
    out = [(name, torch.export.export(module, (), kwargs, strict=False), kwargs)]
    try:
        out.append((f"{name}/dyn", torch.export.export(module, (), kwargs, dynamic_shapes=dims, strict=False), kwargs))
    except Exception as e:  # noqa: BLE001 - export's own limits are reported, not ours
        print(f"  {name}: no dynamic-shape program ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
    modules = ",".join(sorted({type(module).__module__, "transformers.modeling_outputs"}))
    return out, modules


def _leaves(value) -> list[torch.Tensor]:
    return [t for t in torch.utils._pytree.tree_leaves(value) if isinstance(t, torch.Tensor)]


def _outputs(ep: torch.export.ExportedProgram, kwargs: dict) -> list[torch.Tensor]:
    with torch.no_grad():
        return _leaves(ep.module()(**kwargs))


def _document(archive: bytes | str) -> bytes:
    with zipfile.ZipFile(archive if isinstance(archive, str) else io.BytesIO(archive)) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("models/model.json")))


def check(ep: torch.export.ExportedProgram, kwargs: dict, path: str) -> dict:
    """Load ``path`` once with each library (also the warm-up of the warm timings) and compare:
    outputs against the exported program's, pt2serde's saved document against PyTorch's. A
    library that fails to load the file is recorded under ``failed`` (the program is then not
    measured)."""
    import pt2serde

    expected = _outputs(ep, kwargs)
    result = {"same_output": True, "failed": {}}
    for lib, load in (("pt2serde", pt2serde.load), ("torch", torch.export.load)):
        try:
            got = _outputs(load(path), kwargs)
        except Exception as e:  # noqa: BLE001 - reported in the checks table and the JSON
            result["failed"][lib] = f"{type(e).__name__}: {e}"
            continue
        result["same_output"] &= len(got) == len(expected) and all(map(torch.equal, got, expected))
    ours = io.BytesIO()
    pt2serde.save(ep, ours)
    result["same_document"] = _document(ours.getvalue()) == _document(path)
    return result


def _verdict(r: dict) -> str:
    if r["failed"]:
        return "load failed: " + ", ".join(r["failed"])
    return "yes" if r["same_output"] else "NO"


def measure(ep: torch.export.ExportedProgram, path: str, inputs: str, modules: str, repeat: int) -> dict:
    """Every metric for one saved program: {metric: {"pt2serde": x, "torch": y}}."""
    import pt2serde
    from torch._export.serde.serialize import deserialize as torch_deserialize  # the baseline
    from torch._export.serde.serialize import serialize as torch_serialize

    result = {}
    warm = alternating_medians({"pt2serde": lambda: pt2serde.load(path), "torch": lambda: torch.export.load(path)},
                               repeat)
    result["warm_load"] = warm
    # the floor: time pt2serde's load spends in PyTorch calls any loader makes (common.torch_work_timer)
    result["warm_floor"] = {"pt2serde": torch_floor(lambda: pt2serde.load(path), repeat)[1], "torch": warm["torch"]}
    ser = alternating_medians({"pt2serde": lambda: pt2serde.serialize(ep), "torch": lambda: torch_serialize(ep)},
                              repeat)
    result["serialize"] = ser
    artifacts = {"pt2serde": pt2serde.serialize(ep), "torch": torch_serialize(ep)}
    result["deserialize"] = alternating_medians({
        "pt2serde": lambda: pt2serde.deserialize(artifacts["pt2serde"]),
        "torch": lambda: torch_deserialize(artifacts["torch"])}, repeat)
    del artifacts
    gc.collect()
    fresh = {lib: [] for lib in ("pt2serde", "torch")}
    for _ in range(repeat):  # alternate the libraries, one fresh process each
        for lib in fresh:
            fresh[lib].append(run_python(CHILD, lib, path, inputs, modules))
    for metric in ("fresh_load", "fresh_first_output", "peak_rss"):
        result[metric] = {lib: statistics.median(r[metric] for r in runs) for lib, runs in fresh.items()}
    return result


def ratio(metric: str, figures: dict) -> float:
    """PyTorch / pt2serde (RSS growth floored at one page so that a zero growth stays finite)."""
    floor = 4096 if metric == "peak_rss" else 1e-9
    return max(figures["torch"], floor) / max(figures["pt2serde"], floor)


def _cell(metric: str, value: float, weights: int) -> str:
    if metric == "peak_rss":
        return f"{value / MiB:.1f} MiB ({100 * value / weights:.1f}%)"
    return f"{value * 1e3:.0f} ms" if value < 10 else f"{value:.1f} s"


def report(results: dict[str, dict]) -> dict:
    """Print a table per metric with geometric-mean rows; return the geometric means."""
    measured = {name: r for name, r in results.items() if "metrics" in r}
    means = {}
    for metric, title in METRICS.items():
        rows = []
        for name, r in measured.items():
            figures = r["metrics"][metric]
            rows.append([name, _cell(metric, figures["pt2serde"], r["weights"]),
                         _cell(metric, figures["torch"], r["weights"]), f"{ratio(metric, figures):.2f}x"])
        groups = {"all": list(measured), "static": [n for n in measured if "/dyn" not in n],
                  "dynamic": [n for n in measured if "/dyn" in n]}
        means[metric] = {}
        for group, names in groups.items():
            mean = geomean([ratio(metric, measured[n]["metrics"][metric]) for n in names])
            means[metric][group] = mean
            rows.append([f"geometric mean ({group})", "", "", "" if math.isnan(mean) else f"{mean:.2f}x"])
        print(f"\n{title} (ratio = PyTorch / pt2serde)")
        print(table(rows, ["program", "pt2serde", "PyTorch", "ratio"]))
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help=f"comma-separated subset of: {', '.join(MODELS)}")
    parser.add_argument("--repeat", type=int, default=5, help="runs (and fresh processes) per figure")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {', '.join(QUICK)}, one repeat")
    parser.add_argument("--no-measure", action="store_true", help="only build, export, load once and check")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    _quiet()
    names = list(QUICK) if args.quick else args.models.split(",") if args.models else list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    repeat = 1 if args.quick else args.repeat

    results: dict[str, dict] = {}
    checks = []
    with tempfile.TemporaryDirectory(prefix="pt2serde-bench-") as folder:
        for name in names:
            t0 = time.perf_counter()
            programs, modules = export_both(name)
            print(f"{name}: exported {len(programs)} program(s) in {time.perf_counter() - t0:.1f} s", flush=True)
            for program, ep, kwargs in programs:
                path = os.path.join(folder, program.replace("/", "-") + ".pt2")
                inputs = path + ".inputs.pt"
                torch.export.save(ep, path)
                torch.save(kwargs, inputs)
                r = {"weights": weights_bytes(ep), "nodes": len(ep.graph.nodes), **check(ep, kwargs, path)}
                checks.append([program, f"{r['weights'] / MiB:.0f} MiB", str(r["nodes"]),
                               "yes" if r["same_document"] else "NO", _verdict(r)])
                if not args.no_measure and not r["failed"]:
                    r["metrics"] = measure(ep, path, inputs, modules, repeat)
                    print(f"  {program}: " + ", ".join(f"{m} {ratio(m, f):.2f}x" for m, f in r["metrics"].items()),
                          flush=True)
                results[program] = r
                os.unlink(path)
            del programs
            gc.collect()
    print("\nchecks")
    print(table(checks, ["program", "weights", "nodes", "same document", "same outputs"]))
    for program, r in results.items():
        for lib, why in r["failed"].items():
            print(f"  {program}: {lib}: {why[:300]}")
    means = report(results) if not args.no_measure else {}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "repeat": repeat, "programs": results, "geomean": means}, f,
                      indent=1, default=str)
    if not all(r["same_output"] and r["same_document"] and not r["failed"] for r in results.values()):
        raise SystemExit("some program failed to load, or its outputs or document differ (see the checks table)")


if __name__ == "__main__":
    main()
