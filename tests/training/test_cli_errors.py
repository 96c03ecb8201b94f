"""Bad input to `spinescope make-dataset` and `spinescope train`: one line on stderr naming the value, exit 2,
nothing written, no training started."""
import json

import pytest

from spinescope.analysis.cli import main
from spinescope.analysis.training.dataset import make_dataset


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_make_dataset_writes_a_set_and_says_so(tmp_path, capsys):
    assert main(["make-dataset", str(tmp_path / "d"), "--images", "3", "--size", "96x64", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "3 train and 8 val images of 96x64 px" in out
    assert len(json.loads((tmp_path / "d" / "annotations" / "train.json").read_text())["images"]) == 3


@pytest.mark.parametrize("argv, message", [
    (["--images", "0"], "images 0 is out of range"),
    (["--images", "many"], "images must be an integer"),
    (["--size", "16"], "image size 16 is out of range [32, 1024]"),
    (["--size", "64x2000"], "image size height 2000 is out of range"),
    (["--images", "40000", "--size", "1024"], "refused: 50,000 images of 1024x1024 px"),
    (["--max-objects", "99"], "objects per image 99 is out of range"),
])
def test_make_dataset_bad_arguments(tmp_path, capsys, argv, message):
    line = _error(capsys, ["make-dataset", str(tmp_path / "d"), *argv])
    assert message in line
    assert not (tmp_path / "d").exists()


def test_make_dataset_refuses_a_directory_with_files(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    assert "is not an empty directory" in _error(capsys, ["make-dataset", str(tmp_path / "d")])
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["keep.txt"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli") / "tiny"
    make_dataset(directory, images=2, val_images=1, size=64, seed=0)
    return directory


@pytest.mark.slow  # the width case imports torchvision
def test_train_bad_arguments(tiny, tmp_path, capsys):
    base = ["train", "spinenet-49", "--data", str(tiny), "--db", str(tmp_path / "r.sqlite")]
    cases = [
        (["--steps", "0"], "steps 0 is out of range"),
        (["--steps", "2", "--batch", "-1"], "batch -1 is out of range"),
        (["--steps", "2", "--size", "8"], "input size 8 is out of range"),
        (["--steps", "2", "--width", "inf"], "width scale must be above 0"),
        (["--steps", "2", "--width", "0.01"], "width scale 0.01 takes SpineNet-49 outside the spec limits"),
        (["--steps", "2", "--lr", "-3"], "learning rate must be above 0"),
        (["--steps", "2", "--device", "tpu"], "invalid choice: 'tpu'"),
    ]
    for argv, message in cases:
        assert message in _error(capsys, base + argv)
    assert "arguments are required: --steps" in _error(capsys, base)
    assert "unknown built-in 'spinenet-4'" in _error(capsys, ["train", "spinenet-4", "--data", str(tiny),
                                                              "--steps", "1"])
    assert not (tmp_path / "r.sqlite").exists()


def test_train_cuda_without_a_gpu_is_one_line(tiny, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    line = _error(capsys, ["train", "spinenet-49", "--data", str(tiny), "--steps", "1", "--device", "cuda",
                           "--db", str(tmp_path / "r.sqlite")])
    assert "no CUDA GPU is available" in line


def test_train_bad_dataset_files_name_the_file(tiny, tmp_path, capsys):
    base = ["train", "spinenet-49", "--steps", "1", "--db", str(tmp_path / "r.sqlite"), "--data"]
    assert "no such dataset directory" in _error(capsys, base + [str(tmp_path / "none")])
    broken = tmp_path / "broken"
    (broken / "annotations").mkdir(parents=True)
    (broken / "annotations" / "train.json").write_text('{"images": [{"id": 1,')
    line = _error(capsys, base + [str(broken)])
    assert str(broken / "annotations" / "train.json") in line and "not valid JSON" in line
    (broken / "annotations" / "train.json").write_text((tiny / "annotations" / "train.json").read_text())
    (broken / "train").mkdir()
    for image in (tiny / "train").iterdir():
        (broken / "train" / image.name).write_bytes(image.read_bytes())
    assert "val.json: no such file" in _error(capsys, base + [str(broken)])
    (broken / "annotations" / "val.json").write_text((tiny / "annotations" / "val.json").read_text())
    (broken / "val").mkdir()
    (broken / "val" / "000000.png").write_bytes(b"not a png")
    assert "000000.png: cannot read the image" in _error(capsys, base + [str(broken)])
    assert not (tmp_path / "r.sqlite").exists()


def test_train_escapes_a_control_character_in_a_path(tmp_path, capsys):
    line = _error(capsys, ["train", "spinenet-49", "--steps", "1", "--data", str(tmp_path / "a\x1b[31mb")])
    assert "\x1b" not in line and "no such dataset directory" in line
