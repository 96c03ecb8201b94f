"""Parsers cost no more than a spec's size suggests: YAML under the 1 MB limit that is deeply nested, or one long
flow collection of small items, and numbers with thousands of digits are refused quickly and in little memory
(before the fix: 10-74 s and up to 640 MB each, or a traceback); a file's size is checked before it is read;
duplicate keys, merge keys and explicit tags are refused, not resolved. Precise timings belong in benchmarks/;
the bounds here are loose on purpose (this machine is shared)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import MAX_SPEC_BYTES, dumps, loads
from spinescope.spinenet.validate import SpecError

ROOT = Path(__file__).resolve().parents[2]
NEAR_LIMIT = MAX_SPEC_BYTES - 1000
HEAD = "name: x\nfamily: spinenet\nblocks: "


def _nested_flow(depth_each: int) -> str:
    unit = "[" * depth_each + "0" + "]" * depth_each
    return HEAD + "[" + ",".join([unit] * (NEAR_LIMIT // (len(unit) + 1) - 1)) + "]\n"


ATTACKS = {
    # name: (text just under 1 MB, expected message)
    "one deep flow nesting": (HEAD + "[" * (NEAR_LIMIT // 2) + "]" * (NEAR_LIMIT // 2), "nested more than 20 levels"),
    "many nestings 200 deep": (_nested_flow(200), "nested more than 20 levels"),
    "deep block nesting": ("name: x\nblocks:\n" + "".join(" " * i + "- \n" for i in range(1400)),
                           "nested more than 20 levels"),
    "deep flow mappings": (HEAD + "{a: " * (NEAR_LIMIT // 5) + "0" + "}" * (NEAR_LIMIT // 5), "nested more than 20"),
    "long flow sequence": (HEAD + "[" + "0," * (NEAR_LIMIT // 2 - 10) + "0]\n", "more than 5,000 values"),
    "long flow mapping": (HEAD + "{" + ",".join(f"k{i}: 0" for i in range(NEAR_LIMIT // 10)) + "}\n",
                          "more than 5,000 values"),
    "long block sequence": (HEAD + "\n" + "- 0\n" * (NEAR_LIMIT // 4), "more than 5,000 values"),
    "many empty strings": (HEAD + "[" + '"",' * (NEAR_LIMIT // 3 - 10) + '""]\n', "more than 5,000 values"),
    "YAML integer of 900,000 digits": ("name: x\ninput_size: " + "9" * (NEAR_LIMIT - 30) + "\n", "a number of"),
    "YAML sexagesimal integer": ("name: x\ninput_size: " + ":".join(["59"] * (NEAR_LIMIT // 3 - 10)) + "\n",
                                 "a number of"),
    "JSON integer of 900,000 digits": ('{"name": "x", "input_size": ' + "9" * (NEAR_LIMIT - 40) + "}", "a number of"),
    "tuple list level of 900,000 digits": ("[(" + "7" * (NEAR_LIMIT - 60) + ", 'bottleneck', (0, 1), False)]",
                                           "a number of more than 6 digits"),
    "tuple list offset of 4,400 digits": ("[(2, 'bottleneck', (0, " + "1" * 4400 + "), False)]",
                                          "a number of more than 6 digits"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_costly_input_is_refused_quickly_in_little_memory(name):
    text, message = ATTACKS[name]
    assert len(text.encode()) <= MAX_SPEC_BYTES
    data = text.encode()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(SpecError) as info:
            loads(data)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)
    # Before: 10-74 s and 350-640 MB (tracemalloc slows Python code down, so this bound is generous).
    assert seconds < 2.0, (name, seconds)
    assert peak < 100 * 2**20, (name, peak)


def test_a_valid_spec_is_far_below_the_yaml_limits():
    """The node and depth limits leave room: the largest built-in and a 64-block spec load unchanged."""
    for name in ("spinenet-190", "spinenet-mobile-49"):
        spec = load_builtin(name)
        assert loads(dumps(spec, "yaml"), "yaml") == spec
    spec = load_builtin("spinenet-49")
    data = json.loads(dumps(spec, "json"))
    data["blocks"] += [{"id": f"x{i}", "level": 3, "block_fn": "bottleneck", "parents": ["stem0", "stem1"],
                        "is_output": False} for i in range(64 - len(data["blocks"]))]
    import yaml
    big = loads(yaml.safe_dump(data), "yaml")
    assert len(big.blocks) == 64


@pytest.mark.parametrize("text, message", [
    ('{"name": "a", "name": "b"}', "duplicate key 'name'"),
    ('{"head": {"width": 1, "width": 2}}', "duplicate key 'width'"),
    ('{"blocks": [{"id": "b1"}, {"id": "b2", "id": "b3"}]}', "duplicate key 'id'"),
    ("name: a\nname: b\n", "duplicate key 'name' at line 2"),
    ("blocks:\n- {id: b1, level: 2, level: 3}\n", "duplicate key 'level' at line 2"),
    ("scaling:\n  1: a\n  0x1: b\n", "duplicate key 1 at line 3"),
    ("head: {<<: {width: 3}}\n", "merge keys (<<) are not allowed"),
    ("<<: {name: a}\n", "merge keys (<<) are not allowed"),
    ("input_size: !!int '640'\n", "tags (!!int) are not allowed"),
    ("name: !!str x\n", "tags (!!str) are not allowed"),
    ("blocks: !!seq []\n", "tags (!!seq) are not allowed"),
    ("head: !!map {}\n", "tags (!!map) are not allowed"),
    ("name: !custom x\n", "tags (!custom) are not allowed"),
    ("name: !<tag:example.com,2000:x> x\n", "tags (tag:example.com,2000:x) are not allowed"),
    ("name: &a x\n", "anchors"),
])
def test_ambiguous_files_are_refused(text, message):
    with pytest.raises(SpecError) as info:
        loads(text)
    assert message in str(info.value), str(info.value)


def test_quoted_merge_key_is_an_ordinary_unknown_field():
    with pytest.raises(SpecError) as info:
        loads("family: spinenet\n'<<': 1\n", "yaml")
    assert "unknown field '<<'" in str(info.value)


def test_size_is_checked_before_reading(tmp_path):
    """A 1.5 GB (sparse) file: `validate` and `analyze` refuse it at once, without reading it (before the fix
    `validate` read it whole)."""
    big = tmp_path / "huge.yaml"
    with big.open("wb") as handle:
        handle.truncate(1536 * 2**20)
    # Peak RSS of this process alone: /proc's VmHWM (ru_maxrss would include the pytest parent's peak, which Linux
    # carries across fork and exec).
    script = ("import json, re, sys, time\nfrom analysis.cli import main\nrows = []\n"
              "def peak_kib():\n"
              "    return int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
              "for command in ('validate', 'analyze'):\n"
              "    start = time.perf_counter()\n"
              "    code = main([command, sys.argv[1]])\n"
              "    rows.append((code, time.perf_counter() - start, peak_kib()))\n"
              "print(json.dumps(rows))\n")
    result = subprocess.run([sys.executable, "-c", script, str(big)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    (validate_code, validate_s, validate_kib), (analyze_code, analyze_s, analyze_kib) = json.loads(result.stdout)
    assert (validate_code, analyze_code) == (2, 2), result.stderr
    # Reading the file would take 1.5 GB; the CLI's imports (torch among them) take about 300 MB.
    assert validate_s < 5 and validate_kib < 1024 * 1024, (validate_s, validate_kib)
    assert analyze_s < 30 and analyze_kib < 1024 * 1024, (analyze_s, analyze_kib)
    lines = result.stderr.strip().splitlines()
    assert lines == ["huge.yaml: file is 1,610,612,736 bytes, over the 1,048,576-byte limit for a spec",
                     f"error: {big}: file is 1,610,612,736 bytes, over the 1,048,576-byte limit for a spec"]


def test_a_device_is_not_read_without_end(tmp_path):
    """/dev/zero is not a regular file; it is refused, not read forever."""
    with pytest.raises(SpecError) as info:
        from spinescope.spinenet.formats import read_spec_bytes
        read_spec_bytes("/dev/zero")
    assert "no such file" in str(info.value)


def test_yaml_limits_do_not_depend_on_libyaml():
    """The same checks run on PyYAML's pure-Python loader (used where PyYAML is built without libyaml)."""
    import yaml

    from spinescope.spinenet import formats

    for text, message in [("a: 1\na: 2\n", "duplicate key"), ("a: !!int '1'\n", "tags"), ("<<: {a: 1}\n", "merge"),
                          ("a: " + "[" * 30 + "]" * 30, "nested more than 20"),
                          ("a: [" + "0," * 6000 + "0]", "more than 5,000 values")]:
        with pytest.raises(yaml.YAMLError, match=message):
            yaml.load(text, Loader=formats._StrictPureLoader)  # noqa: S506 - the safe loader under test
