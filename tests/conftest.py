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
