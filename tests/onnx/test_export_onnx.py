"""spinescope.export_onnx: a trained module's own weights, with a height and width free in the graph, run by ONNX
Runtime at sizes other than the traced one and compared with PyTorch; the size arithmetic under
`dynamic_shapes()` checked bit for bit against the eager forward; torch.jit.trace with and without it."""
import copy
import io
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

import spinescope
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.layers import dynamic_shapes, resize_nearest
from spinescope.spinenet.layout import resolve

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EXAMPLE = 128  # the traced size
SIZES = [(192, 320), (161, 97), (200, 200)]  # height x width: non-square, odd, another plan
LEVELS = ["P3", "P4", "P5", "P6", "P7"]


def relative_error(actual, expected) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


def session(data: bytes):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def plan_signature(spec, size):
    """What the reference resampling does on each connection at `size`, apart from the sides themselves."""
    return [(e.source, e.target, e.plan.stride2_conv, e.plan.pool_kernel, e.plan.pool_stride, e.plan.scale,
             e.plan.resize) for e in resolve(spec, size).edges]


@pytest.fixture(scope="module")
def trained():
    """A spinenet-49s after one Adam step in train mode (every weight moved by about 1e-2, the BN statistics
    updated), and a copy from before it."""
    torch.manual_seed(0)
    model = spinescope.create_backbone("spinenet-49s")
    before = copy.deepcopy(model)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = sum(feature.square().mean() for feature in model(torch.randn(2, 3, 64, 64)).values())
    loss.backward()
    optimizer.step()
    model.eval()
    return model, before


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "spinenet-49s.onnx"
    returned = spinescope.export_onnx(trained[0], path, input_size=EXAMPLE)
    assert returned == path
    return path.read_bytes()


def test_the_test_sizes_need_other_resampling_than_the_traced_size():
    # Not only other sides: other pools and resizes, which a graph of the traced size's plan would get wrong.
    spec = load_builtin("spinenet-49s")
    for size in SIZES:
        assert plan_signature(spec, size) != plan_signature(spec, EXAMPLE), size


def test_names_and_free_axes(exported):
    model = onnx.load_from_string(exported)
    onnx.checker.check_model(model)
    assert [item.name for item in model.graph.input] == ["images"]
    assert [item.name for item in model.graph.output] == LEVELS
    dims = [dim.dim_param or dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    heights = {output.type.tensor_type.shape.dim[2].dim_param for output in model.graph.output}
    assert len(heights) == 5 and "" not in heights  # free, and P3's height is not named as P4's


@pytest.mark.parametrize("height, width", SIZES)
def test_onnx_runtime_matches_pytorch_at_other_sizes(trained, exported, height, width):
    model = trained[0]
    images = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(height * width))
    with torch.no_grad():
        expected = model(images)
    outputs = session(exported).run(None, {"images": images.numpy()})
    for name, actual in zip(LEVELS, outputs):
        level = int(name[1:])
        side = (-(-height // 2 ** level), -(-width // 2 ** level))  # ceil(H / 2^l) x ceil(W / 2^l)
        assert actual.shape == (2, 128, *side), name
        assert relative_error(actual, expected[name].numpy()) < 1e-4, name


def test_the_export_holds_the_modules_own_weights(trained, exported):
    model, before = trained
    images = torch.randn(1, 3, *SIZES[0], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        now, then = model(images), before(images)
    outputs = session(exported).run(None, {"images": images.numpy()})
    for name, actual in zip(LEVELS, outputs):
        assert relative_error(actual, now[name].numpy()) < 1e-4, name
        assert relative_error(actual, then[name].numpy()) > 1e-2, name  # not the weights it was created with


def test_a_small_resnet_fpn_follows_odd_sizes():
    # ResNet-FPN's size-dependent parts: the stem's SAME max-pool padding (by parity) and the FPN's nearest resize.
    torch.manual_seed(1)
    spec = replace(load_builtin("resnet50-fpn"), name="ResNet-FPN small", stages=(1, 1, 1, 1))
    model = spinescope.create_backbone(spec, input_size=64)
    data = spinescope.export_onnx(model, input_size=64)
    run = session(data)
    for height, width in [(97, 161), (192, 320), (65, 63)]:
        images = torch.randn(1, 3, height, width)
        with torch.no_grad():
            expected = model(images)
        for name, actual in zip(LEVELS, run.run(None, {"images": images.numpy()})):
            assert actual.shape == tuple(expected[name].shape), (height, width, name)
            assert relative_error(actual, expected[name].numpy()) < 1e-4, (height, width, name)


@pytest.mark.parametrize("name, sizes", [
    ("spinenet-49s", [(1, 1), (33, 65), (64, 64), (97, 161), (129, 200), (192, 320)]),
    ("spinenet-mobile-49xs", [(1, 1), (33, 65), (97, 161), (192, 320)])])
def test_sizes_as_tensors_give_the_eager_numbers_bit_for_bit(name, sizes):
    # The size-dependent choices made as data (gathers, selections) against the eager forward's own (strided
    # SAME pools, interpolate), at sizes of many resampling plans down to 1-pixel maps.
    torch.manual_seed(2)
    model = spinescope.create_backbone(name)
    for height, width in sizes:
        images = torch.randn(1, 3, height, width)
        with torch.no_grad():
            eager = model(images)
            with dynamic_shapes():
                as_data = model(images)
        for level in eager:
            assert torch.equal(as_data[level], eager[level]), (name, height, width, level)


def test_jit_trace_follows_the_size_only_under_dynamic_shapes(trained):
    model = trained[0]
    example = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        with dynamic_shapes():
            traced = torch.jit.trace(model, example, strict=False, check_trace=False)
        frozen = torch.jit.trace(model, example, strict=False, check_trace=False)
        for height, width in SIZES[:2]:
            images = torch.randn(1, 3, height, width)
            expected, actual = model(images), traced(images)
            assert all(torch.equal(actual[level], expected[level]) for level in LEVELS)
            try:  # the plain trace keeps the 96 px sizes: it fails, or returns other numbers
                wrong = frozen(images)
            except RuntimeError:
                continue
            assert not all(wrong[level].shape == expected[level].shape and torch.equal(wrong[level], expected[level])
                           for level in LEVELS)


def test_nearest_resizes_take_pytorchs_pixels_in_onnx_runtime():
    # ONNX Runtime's Resize picks i / float32(out / in), PyTorch floor(i * float32(in / out)): one pixel apart for
    # these (in, out) sides, among them the classification head's 16 -> 122 at a 970 px input.
    class Resize(nn.Module):
        def forward(self, x, like):
            return resize_nearest(x, like.shape[-2:])

    buffer = io.BytesIO()
    with dynamic_shapes(), torch.no_grad():
        torch.onnx.export(Resize(), (torch.zeros(1, 1, 5, 7), torch.zeros(1, 1, 3, 4)), buffer, dynamo=False,
                          input_names=["x", "like"], dynamic_axes={"x": {2: "h", 3: "w"}, "like": {2: "a", 3: "b"}})
    run = session(buffer.getvalue())
    for (height, width), size in [((21, 14), (6, 8)), ((16, 25), (122, 15)), ((26, 20), (14, 12))]:
        x = torch.arange(height * width, dtype=torch.float32).reshape(1, 1, height, width)
        expected = torch.nn.functional.interpolate(x, size=size, mode="nearest").numpy()
        assert np.array_equal(run.run(None, {"x": x.numpy(), "like": np.zeros((1, 1, *size), np.float32)})[0],
                              expected), (height, width, size)


def test_destinations_and_names_of_a_plain_module(tmp_path):
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    data = spinescope.export_onnx(module, input_size=(20, 30))
    model = onnx.load_from_string(data)
    assert [item.name for item in model.graph.output] == ["output"]
    buffer = io.BytesIO()
    assert spinescope.export_onnx(module, buffer, input_size=(20, 30)) == buffer.getvalue() == data
    path = spinescope.export_onnx(module, str(tmp_path / "plain.onnx"), input_size=(20, 30))
    assert path.read_bytes() == data
    images = np.random.default_rng(0).standard_normal((2, 3, 7, 11)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(images)).numpy()
    assert relative_error(session(data).run(None, {"images": images})[0], expected) < 1e-5


def test_pyramid_pooling_refuses_a_free_size():
    module = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveMaxPool2d(4), nn.Flatten())
    with pytest.raises(ValueError, match="dynamic=False"):
        spinescope.export_onnx(module, input_size=32)
    assert spinescope.export_onnx(module, input_size=32, dynamic=False)[:2]  # fixed at 32 x 32 it exports


def test_without_onnx_one_line_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(ImportError) as error:
        spinescope.export_onnx(nn.Conv2d(3, 4, 1))
    assert "pip install 'spinescope[onnx]'" in str(error.value) and "\n" not in str(error.value)
