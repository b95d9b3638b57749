"""slangpy rendering: the passes and render graph that turn a bundle into images (trace ->
synthesize -> infer (INT8) -> compose); the device helpers of :mod:`neumat.device` are
re-exported here.

The package imports no GPU library at import time; slangpy is loaded when a device is created.
Materials reach the renderer only through bundles (never ``neumat.models`` / ``neumat.train``).
"""

from ..device import DeviceDescription, DeviceError, create, default_device, describe

__all__ = ["DeviceDescription", "DeviceError", "create", "default_device", "describe"]
