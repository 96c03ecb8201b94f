"""The proxy-ap objective end to end: a tiny synthetic COCO-format set, two candidates trained for a step each at
a tiny width through `spinescope.analysis.training.train.train_proxy`, their proxy AP stored. Skipped only when
that module is missing."""
import pytest

from spinescope.analysis.search.engine import SearchConfig, TrainSettings, create_run, run_search
from spinescope.analysis.search.space import make_space
from spinescope.analysis.search.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def test_proxy_ap_search_trains_and_stores_each_candidate(tmp_path):
    pytest.importorskip("spinescope.analysis.training.train")
    from spinescope.analysis.training.dataset import make_dataset

    make_dataset(tmp_path / "set", images=4, val_images=2, size=64)
    train = TrainSettings(dataset=str(tmp_path / "set"), steps=1, batch_size=2, image_size=64, device="cpu")
    config = SearchConfig(make_space(), "random", "proxy-ap", budget=2, seed=0, train=train)
    store = Store(tmp_path / "s.sqlite")
    create_run(store, config, "p")
    assert run_search(store, "p", workers=0)["status"] == "done"
    rows = store.candidates("p")
    assert [row["status"] for row in rows] == ["done", "done"], [row["error"] for row in rows]
    for row in rows:
        assert 0.0 <= row["objective"] <= 1.0 and row["objective"] == row["metrics"]["proxy_ap"]
        assert 0.0 <= row["metrics"]["ap50"] <= 1.0 and row["metrics"]["train_steps"] == 1
        assert row["macs"] > 50e9  # the full-size candidate's cost, not the narrowed trained copy's
