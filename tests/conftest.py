"""Shared fixtures: a real local Ray for sweep tests (never a mock)."""

import os

import pytest

# Tests must not depend on the machine's torch thread defaults (2-core CI).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def local_ray():
    """A real 2-CPU local Ray shared by the tests of one module, shut down afterwards."""
    import ray

    ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
