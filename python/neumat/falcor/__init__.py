"""Falcor integration: neumat's Slang modules run as ``falcor.ComputePass`` inside a headless
Falcor ``Testbed`` (PyPI ``falcorcomp``, Falcor 8.0 over Vulkan), plus render-graph scripts
in Falcor's own format.

Falcor render passes can only be C++ plugins; Python builds render graphs and runs Slang compute
between ``testbed.frame()`` calls. So the Falcor path is: Falcor loads the scene and runs a
graph of its own passes (:mod:`.graphs`: GBufferRaster / VBufferRT visibility, ToneMapper),
then :mod:`.driver` runs the project's passes — the SAME ``shaders/*.slang`` entry points the
slangpy renderer dispatches — as compute passes on Falcor buffers. How their arguments are bound
is pure Python (:mod:`.wrapper`, :mod:`.binding`), tested against a fake ``falcor`` module.

Modules: :mod:`.graphs` (graph-script generator; shipped scripts in ``scripts/``), :mod:`.wrapper`
(entry-point parameters -> global-parameter Slang wrapper), :mod:`.binding` (capture a pass's
dispatch arguments, bind them to a Falcor ``ShaderVar``), :mod:`.driver` (headless Testbed
renderer), :mod:`.profile` (profiler capture -> ``neumat bench frames`` JSON shape).

Nothing here has run on a GPU yet: ``falcorcomp`` imports only where an NVIDIA driver
(libcuda.so.1) is present. What runs on CPU: graph scripts, wrapper sources (compiled and
dispatched on lavapipe through slangpy, bit-compared with the passes' own kernels), binding.
"""

from __future__ import annotations

FALCOR_MODULES = ("falcorcomp", "falcor")
"""Python modules tried in order: PyPI ``falcorcomp`` (``import falcorcomp as falcor``), then
the ``falcor`` module of a Falcor source build."""

UNAVAILABLE = ("Falcor is not available here: it needs a GPU machine with an NVIDIA driver "
               "(libcuda.so.1) and `pip install falcorcomp`")
"""One-line message shown when Falcor cannot be imported."""


class FalcorUnavailable(RuntimeError):
    """Falcor cannot be imported on this machine (message: :data:`UNAVAILABLE` + the cause)."""


def import_falcor():
    """The Falcor Python module (:data:`FALCOR_MODULES`), or :class:`FalcorUnavailable` with a
    one-line reason (missing package, or no NVIDIA driver to load it)."""
    import importlib

    causes = []
    for name in FALCOR_MODULES:
        try:
            return importlib.import_module(name)
        except (ImportError, OSError) as e:  # OSError: libcuda.so.1 missing
            causes.append(f"{name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    raise FalcorUnavailable(f"{UNAVAILABLE} ({'; '.join(causes)})")
