"""A local Ray cluster for each sweep test module (2 CPUs, no dashboard, 127.0.0.1). Per module, not per session:
Ray's driver prints its workers' deaths (test_ray_lost_worker kills some on purpose) to stdout whenever they
reach it, even with log_to_driver off, so a cluster left running could write into a later test's captured output."""
import pytest


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield ray
    ray.shutdown()
