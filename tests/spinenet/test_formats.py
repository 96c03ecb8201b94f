"""Save -> load identity for JSON, YAML and the tuple list; safe parsing of hostile text."""
import json

import re

import pytest

from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.formats import dumps, dumps_tuples, load_spec_file, loads, parse_tuples
from spinescope.spinenet.spec import spec_hash, spec_to_dict
from spinescope.spinenet.validate import SpecError
from reference_counts import MOBILE_49, SPINENET_49


@pytest.mark.parametrize("name", BUILTIN_NAMES)
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_round_trip_json_yaml(name, fmt, tmp_path):
    spec = load_builtin(name)
    text = dumps(spec, fmt)
    assert loads(text, fmt) == spec
    assert loads(text) == spec  # format detected
    path = tmp_path / f"spec.{fmt}"
    path.write_text(text)
    assert load_spec_file(path) == spec


@pytest.mark.parametrize("name", [n for n in BUILTIN_NAMES if "resnet" not in n])
def test_round_trip_tuples(name):
    spec = load_builtin(name)
    text = dumps(spec, "tuples")
    assert parse_tuples(text, base=spec) == spec
    assert loads(text, base=spec) == spec


def test_tuple_export_is_the_reference_list():
    assert eval(dumps_tuples(load_builtin("spinenet-49"))) == SPINENET_49  # our own output, trusted text
    assert eval(dumps_tuples(load_builtin("spinenet-mobile-49"))) == MOBILE_49


def test_tuple_import_accepts_the_reference_source_form():
    text = "SPINENET_BLOCK_SPECS = [\n" + "".join(f"    {t!r},  # a comment\n" for t in SPINENET_49) + "]\n"
    assert parse_tuples(text, base=load_builtin("spinenet-96")) == load_builtin("spinenet-96")


@pytest.mark.parametrize("text, message", [
    ("[(2, 'bottleneck', (0, 1), False), __import__('os').system('true')]", "entry 2 is not"),
    ("[(2, 'bottleneck', (0, 5), False)]", "input offset 5"),
    ("[(2, 'bottleneck', (0, 1), False) (3, 'residual', (0, 1), False)]", "unexpected text after entry 1"),
    ("[]", "the list is empty"),
    ("(2, 'bottleneck', (0, 1), False)", "must be a list"),
    ("[(2, 'bottleneck', (0, 1), False)]", "no output block at level 3"),
])
def test_bad_tuple_lists(text, message):
    with pytest.raises(SpecError, match=message):
        parse_tuples(text, base=load_builtin("spinenet-49"))


def test_spec_hash_ignores_name_and_format():
    spec = load_builtin("spinenet-49")
    renamed = loads(dumps(spec, "yaml").replace("name: SpineNet-49", "name: mine"))
    assert spec_hash(renamed) == spec_hash(spec) != spec_hash(load_builtin("spinenet-96"))


@pytest.mark.parametrize("text, message", [
    ("a: &x [1]\nb: *x\n", "anchors"),
    ("!!python/object/apply:os.system ['true']", "invalid YAML"),
    ("name: [unclosed", "invalid YAML at line"),
    ('{"name": NaN}', "NaN is not a valid number"),
    ('{"name": ', "invalid JSON at line 1"),
    ("[" * 100000 + "]" * 100000, "invalid JSON"),
    ("", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"),
    (b"x" * (1 << 21), "over the"),
    ("- 1\n- 2\n", "must be a mapping"),
])
def test_hostile_text_gets_one_line_errors(text, message):
    with pytest.raises(SpecError, match=message) as info:
        loads(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, hint", [
    ("name: **bold**\nfamily: spinenet\n", "; text starting with '*' must be quoted"),
    ("name: @mine\n", "; text starting with '@' must be quoted"),
    ("name: mine: v2\n", "; text containing ': ' must be quoted"),
    ("name: [unclosed", ""),
])
def test_unquoted_text_that_yaml_reads_as_syntax_gets_a_quoting_hint(text, hint):
    import yaml

    with pytest.raises(SpecError) as info:
        loads(text)
    assert re.match(r"invalid YAML at line \d+, column \d+: ", str(info.value))
    assert str(info.value).endswith(hint) and str(info.value).count("quoted") == (1 if hint else 0)
    if hint:  # quoted as the hint says, the same text is YAML
        quoted = text.replace("**bold**", '"**bold**"').replace("@mine", "'@mine'").replace("mine: v2", '"mine: v2"')
        assert yaml.safe_load(quoted)["name"] in ("**bold**", "@mine", "mine: v2")


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="unknown file type"):
        load_spec_file(tmp_path / "spec.pkl")
    with pytest.raises(SpecError, match="no such file"):
        load_spec_file(tmp_path / "missing.json")


def test_json_file_is_plain_data():
    data = json.loads(dumps(load_builtin("spinenet-49s"), "json"))
    assert data == spec_to_dict(load_builtin("spinenet-49s"))
    assert data["blocks"][0] == {"id": "b2", "level": 2, "block_fn": "bottleneck", "parents": ["stem0", "stem1"],
                                 "is_output": False}
