"""pt2serde.bridge.treespec: a treespec cannot make load import anything.

The torch-free shape check of treespec texts and this reader refuse the same texts:
``tests/format/test_treespec_text.py``."""

import json

import pytest

import pt2serde
from artifacts import artifact_with
from pt2serde import SerializeError


def test_treespec_naming_a_module_is_not_imported(small):
    art = pt2serde.serialize(small[0])

    def evil(d):
        entry = d["graph_module"]["module_call_graph"][0]["signature"]
        entry["in_spec"] = json.dumps([1, {"type": "collections.defaultdict", "context": json.dumps(
            {"default_factory_module": "os", "default_factory_name": "system", "dict_context": []}
        ), "children_spec": []}])

    with pytest.raises(SerializeError, match="defaultdict"):
        pt2serde.deserialize(artifact_with(art, evil))
