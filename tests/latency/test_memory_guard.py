"""The memory estimate made before a run: live-tensor peak on the meta device, exact weights; the CPU time
refusal."""
import psutil
import pytest
from torch import nn

from spinescope.analysis.latency.errors import LatencyError
from spinescope.analysis.latency.memory_guard import check_time, estimate_memory, peak_activation_bytes
from spinescope.analysis.latency.request import LatencyRequest
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin


def test_peak_of_a_small_stack_matches_hand_count():
    # input 3x16x16, conv out 8x16x16, ReLU out 8x16x16 (not in place: conv out still alive) -> 1x1 conv out
    # 4x16x16 after the conv output is freed. Peak = (3 + 8 + 8) x 256 floats x 4 bytes.
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).to("meta")
    assert peak_activation_bytes(model, (1, 3, 16, 16)) == (3 + 8 + 8) * 256 * 4


def test_in_place_and_views_are_not_counted_twice():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Flatten()).to("meta")
    assert peak_activation_bytes(model, (2, 3, 16, 16)) == 2 * (3 + 8) * 256 * 4


@pytest.mark.parametrize("name,head", [("spinenet-49s", "retinanet"), ("resnet50-fpn", "none"),
                                       ("spinenet-mobile-49xs", "classification")])
def test_weights_exact_and_activations_linear_in_batch(name, head):
    spec = load_builtin(name)
    model = build_model(spec, head, 64)
    exact = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    one, three = estimate_memory(spec, 64, head, 1), estimate_memory(spec, 64, head, 3)
    assert one.weight_bytes == three.weight_bytes == exact
    assert three.activation_bytes == 3 * one.activation_bytes > 3 * 64 * 64 * 4 * 3
    assert one.autocast_copy_bytes == 0


def test_half_precision_halves_activations_and_adds_weight_copies():
    spec = load_builtin("spinenet-49s")
    full, half = estimate_memory(spec, 64), estimate_memory(spec, 64, precision="bf16")
    matmul_weights = sum(m.weight.numel() for m in build_model(spec, input_size=64, device="meta").modules()
                         if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert half.activation_bytes * 2 == full.activation_bytes
    assert half.autocast_copy_bytes == 2 * matmul_weights
    assert half.total_bytes == full.weight_bytes + 2 * matmul_weights + full.activation_bytes // 2


def test_estimate_allocates_nothing_real_for_a_huge_run():
    # SpineNet-190 with its head at 1280 px and batch 64 would need tens of GiB; the estimate stays on meta.
    before = psutil.Process().memory_info().rss
    estimate = estimate_memory(load_builtin("spinenet-190"), 1280, "retinanet", 64)
    assert estimate.total_bytes > 20 * 2**30
    assert psutil.Process().memory_info().rss - before < 2**30


def test_time_guard_counts_warmup_timed_and_probe_passes():
    # SpineNet-190 at 1280 px is about 620B MACs a pass; 12 passes (2 warm-up, 9 timed, 1 memory probe).
    requests = [LatencyRequest(load_builtin("spinenet-190"))]
    with pytest.raises(LatencyError, match=r"^refused: the run would take about [\d,]+ s on this CPU, over its 30 s "
                                           r"time limit; lower") as refused:
        check_time(requests, iters=9, warmup=2, timeout=30)
    assert refused.value.kind == "time"
    check_time([LatencyRequest(load_builtin("spinenet-mobile-49xs"), 64)], iters=9, warmup=2, timeout=30)
