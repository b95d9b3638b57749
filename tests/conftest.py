"""Fixtures shared by the test modules."""

import pytest


@pytest.fixture(scope="module")
def device():
    """The slangpy render device neumat picks here (lavapipe on CPU machines); skips with the
    reason when none can be created."""
    from neumat import device as dev

    try:
        return dev.default_device()
    except dev.DeviceError as e:
        pytest.skip(f"no slangpy device on this machine: {e}")


@pytest.fixture(scope="module", params=["vulkan", "cuda"])
def typed_device(request):
    """The slangpy device of each device type (``vulkan``, ``cuda``; one per process,
    :func:`neumat.device.shared_device`); skips a type this machine lacks, with the reason."""
    from neumat import device as dev

    try:
        return dev.shared_device(request.param)
    except dev.DeviceError as e:
        pytest.skip(f"no {request.param} device on this machine: {e}")
