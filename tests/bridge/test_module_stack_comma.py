"""A module registered under a name holding a comma (issue 15): its ``nn_module_stack``
entries (``key,path,type``) read back through the one splitter
(``format.codegen_fields.split_module_stack_entry``), for load, validate and save's check."""

import io

import pytest
import torch

import pt2serde
from pt2serde.cli import main as cli_main
from pt2serde.errors import SerializeError
from pt2serde.format.codegen_fields import split_module_stack_entry


@pytest.mark.parametrize("item, fields", [
    ("L__self__,,__main__.M", ("L__self__", "", "__main__.M")),
    ("L__self___lin,lin,torch.nn.modules.linear.Linear", ("L__self___lin", "lin", "torch.nn.modules.linear.Linear")),
    # strict export: the key is a number, commas of the path sit inside brackets
    ("140225796042768,getattr(L['self'], 'dec,1'),__main__.Inner",
     ("140225796042768", "getattr(L['self'], 'dec,1')", "__main__.Inner")),
    ("7,layers[slice(1, None, None)],torch.nn.Sequential", ("7", "layers[slice(1, None, None)]", "torch.nn.Sequential")),
    # non-strict export: the key is L__self__ + the path, each with the name's commas
    ("L__self__dec,1,dec,1,__main__.Inner", ("L__self__dec,1", "dec,1", "__main__.Inner")),
    ("L__self__dec,1.lin,dec,1.lin,torch.nn.modules.linear.Linear",
     ("L__self__dec,1.lin", "dec,1.lin", "torch.nn.modules.linear.Linear")),
    ("L__self__a,b,,c,a,b,,c,T", ("L__self__a,b,,c", "a,b,,c", "T")),
])
def test_split(item, fields):
    assert split_module_stack_entry(item) == fields


@pytest.mark.parametrize("item, count", [("a,b", 2), ("a,b,c,d", 4), ("abc", 1), ("k,getattr(a, 'b'", 2)])
def test_split_refuses_an_odd_number_of_separating_commas(item, count):
    with pytest.raises(SerializeError) as e:
        split_module_stack_entry(item)
    assert str(e.value) == ("Expected 3 comma-separated fields `key,path,type` (the key and the path holding "
                            f"as many commas), got {count} in {item!r}")


def test_entries_without_brackets_split_as_the_bracket_counting_reader_does():
    """Entries without ``[`` or ``(`` take a string-method path: it splits (or refuses) every
    such entry exactly where counting the separating commas one by one does."""
    import random

    def counted(item: str):
        commas = [i for i, c in enumerate(item) if c == ","]
        if len(commas) < 2 or len(commas) % 2:
            return len(commas) + 1
        middle, last = commas[len(commas) // 2 - 1], commas[-1]
        return item[:middle], item[middle + 1:last], item[last + 1:]

    rng = random.Random(15)
    items = ["".join(rng.choice("ab,.,_") for _ in range(rng.randint(0, 14))) for _ in range(20000)]
    for item in items + ["", ",", ",,", ",,,,", "a,,b,,c"]:
        expected = counted(item)
        if isinstance(expected, int):
            with pytest.raises(SerializeError, match=f"got {expected} in"):
                split_module_stack_entry(item)
        else:
            assert split_module_stack_entry(item) == expected, item


class Inner(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(x).relu()


class CommaNamed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_module("dec,1", Inner())
        self.tail = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.tail(getattr(self, "dec,1")(x) * 2)


def _export(strict: bool):
    torch.manual_seed(0)
    return torch.export.export(CommaNamed(), (torch.randn(4, 3),), strict=strict)


def _stacks(ep) -> list:
    return [n.meta.get("nn_module_stack") for n in ep.graph.nodes]


def _saved(ep) -> bytes:
    buf = io.BytesIO()
    pt2serde.save(ep, buf)
    return buf.getvalue()


def _same_outputs(original, loaded):
    x = torch.randn(4, 3)
    expected = original.module()(x)
    torch.testing.assert_close(loaded.module()(x), expected)
    torch.testing.assert_close(torch.export.unflatten(loaded)(x), expected)


@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
def test_pt2serde_reads_its_own_archive(strict, tmp_path):
    """The stacks come back as exported; ``ep.module()`` and ``torch.export.unflatten`` (which
    builds a submodule per stack path, ``dec,1`` through ``getattr``) compute the same; validate agrees."""
    ep = _export(strict)
    assert any("dec,1" in path for stack in _stacks(ep) if stack for path, _ in stack.values())
    data = _saved(ep)
    loaded = pt2serde.load(io.BytesIO(data))
    assert _stacks(loaded) == _stacks(ep)
    _same_outputs(ep, loaded)
    assert "dec,1" in dict(torch.export.unflatten(loaded).named_modules())
    path = tmp_path / "m.pt2"
    path.write_bytes(data)
    assert cli_main(["validate", str(path)]) == 0


@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
def test_pt2serde_reads_pytorchs_archive(strict):
    ep = _export(strict)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    loaded = pt2serde.load(io.BytesIO(buf.getvalue()))
    assert _stacks(loaded) == _stacks(ep)
    _same_outputs(ep, loaded)


def test_pytorch_refuses_the_non_strict_entry():
    """Where we differ: PyTorch 2.13's reader splits at every comma outside brackets and
    refuses the non-strict program's entry (its own archive and ours alike); strict export's
    commas sit inside ``getattr(...)``, which both read."""
    ep = _export(False)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    for data in (_saved(ep), buf.getvalue()):
        with pytest.raises(RuntimeError, match="error when deserializing the saved file"):  # its log: "got 5"
            torch.export.load(io.BytesIO(data))
    strict = _export(True)
    assert _stacks(torch.export.load(io.BytesIO(_saved(strict)))) == _stacks(strict)


@pytest.mark.parametrize("key, path, message", [
    ("a", "b,c,d", r"nn_module_stack entry 'a' of node \w+ would not read back: \('b,c,d', '__main__.Inner'\)"),
    ("a,b", "dec", r"Expected 3 comma-separated fields `key,path,type` .*got 4 in 'a,b,dec,__main__.Inner'"),
    ("a", "b;c", r"nn_module_stack entry 'a' of node \w+ would not read back"),
])
def test_save_refuses_an_entry_that_would_not_read_back(key, path, message):
    """The writer checks each entry through the reader's splitter: commas that would read
    back as other fields (or the entries' separator) are refused at save."""
    ep = _export(False)
    node = next(n for n in ep.graph.nodes if n.meta.get("nn_module_stack"))
    node.meta["nn_module_stack"] = {key: (path, "__main__.Inner")}
    with pytest.raises(SerializeError, match=message):
        _saved(ep)
