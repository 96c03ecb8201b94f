"""What a latency run asks for: the device named plainly, unique labels, the payload the worker reads."""
import json

import torch

from spinescope.analysis.latency.request import LatencyRequest, cuda_available, describe_device, unique_labels, worker_payload
from spinescope.analysis.latency.worker import cpu_name
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.spec import spec_from_dict


def test_device_description_on_this_machine():
    cpu = f"CPU ({cpu_name()}, {torch.get_num_threads()} threads)"
    if cuda_available():
        assert describe_device() == f"GPU: {torch.cuda.get_device_name(0)}"
        assert describe_device("cpu") == f"{cpu}; a GPU is available"
    else:
        assert describe_device() == f"{cpu}, no GPU found"


def test_unique_labels():
    spine, mobile = load_builtin("spinenet-49s"), load_builtin("spinenet-mobile-49xs")
    assert unique_labels([LatencyRequest(spine, 64), LatencyRequest(mobile, 64)]) == ["SpineNet-49S",
                                                                                       "Mobile SpineNet-49XS"]
    # Default sizes differ (640 and 256): the labels say so.
    assert unique_labels([LatencyRequest(spine), LatencyRequest(mobile)]) == ["SpineNet-49S@640",
                                                                              "Mobile SpineNet-49XS@256"]
    assert unique_labels([LatencyRequest(spine, 64), LatencyRequest(spine, 128), LatencyRequest(spine, 64, label="x"),
                          LatencyRequest(spine, 64)]) == ["SpineNet-49S@64", "SpineNet-49S@128", "x",
                                                          "SpineNet-49S@64#2"]


def test_worker_payload_is_json_and_carries_every_option():
    spec = load_builtin("spinenet-49s")
    request = LatencyRequest(spec, 96, head="retinanet", batch=2, precision="bf16", channels_last=True, fold_bn=True)
    payload = json.loads(json.dumps(worker_payload(
        [request], ["A"], device="cpu", threads=1, iters=5, warmup=2, memory_limit_bytes=None, memory_headroom=0.9,
        estimated_bytes=1234)))
    (model,) = payload.pop("models")
    assert payload == {"device": "cpu", "threads": 1, "iters": 5, "warmup": 2, "memory_limit_bytes": None,
                       "memory_headroom": 0.9, "estimated_bytes": 1234, "per_block": False}
    assert spec_from_dict(model.pop("spec")) == spec
    assert model == {"label": "A", "input_size": 96, "head": "retinanet", "batch": 2, "precision": "bf16",
                     "channels_last": True, "fold_bn": True, "compile": False}
