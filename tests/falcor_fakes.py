"""Fake ``falcor`` modules for the Falcor tests: one that records render graphs and scene
scripts, and one whose ComputePass / buffers run on a slangpy device (lavapipe), so the
driver's whole path — wrappers, binding, buffer twins, read-back — runs on CPU."""

from __future__ import annotations

import contextlib
import types

import numpy as np


class RecordingGraph:
    """``RenderGraph(name)`` recording passes, edges and outputs."""

    def __init__(self, name):
        self.name, self.passes, self.edges, self.outputs = name, {}, [], []

    def addPass(self, p, name):  # noqa: N802 (Falcor's name)
        self.passes[name] = p

    def addEdge(self, src, dst):  # noqa: N802
        self.edges.append((src, dst))

    def markOutput(self, name):  # noqa: N802
        self.outputs.append(name)


class SceneObject:
    """A Falcor scene object (Camera, DirectionalLight, PointLight): records attributes."""

    def __init__(self, name):
        self.name = name


def graph_namespace() -> tuple[types.ModuleType, list]:
    """A fake ``falcor`` for ``from falcor import *`` in graph / scene scripts, and the list
    ``m.addGraph`` appends to."""
    added: list = []
    mod = types.ModuleType("falcor")
    mod.RenderGraph = RecordingGraph
    mod.createPass = lambda kind, props=None: {"type": kind, "props": dict(props or {})}
    mod.__all__ = ["RenderGraph", "createPass"]
    return mod, added


def vec(scalar, n):
    """Fake ``falcor.float3`` etc.: a tagged list."""
    class Vec(list):
        kind = f"{scalar}{n}"

        def __init__(self, *xs):
            if len(xs) != n:
                raise TypeError(f"{self.kind} takes {n} values")
            super().__init__(xs)
    Vec.__name__ = f"{scalar}{n}"
    return Vec


class ShaderVar:
    """Fake ``ShaderVar``: nested dict of assignments."""

    def __init__(self, store=None):
        self.store = {} if store is None else store

    def __getitem__(self, name):
        return ShaderVar(self.store.setdefault(name, {}))

    def __setitem__(self, name, value):
        self.store[name] = value


def plain(values):
    """The assignments of a :class:`ShaderVar` as slangpy ``vars`` (vectors as lists, buffers
    as their slangpy buffers)."""
    out = {}
    for k, v in values.items():
        if isinstance(v, dict):
            out[k] = plain(v)
        elif isinstance(v, SlangpyBuffer):
            out[k] = v.buffer
        elif isinstance(v, list):
            out[k] = list(v)
        else:
            out[k] = v
    return out


class SlangpyBuffer:
    """Fake Falcor structured buffer backed by a slangpy buffer."""

    def __init__(self, device, struct_size, element_count):
        import slangpy as spy

        self.struct_size, self.element_count = struct_size, element_count
        self.buffer = device.create_buffer(size=struct_size * element_count,
                                           usage=spy.BufferUsage.unordered_access | spy.BufferUsage.shader_resource)
        self.uploads = 0

    def from_numpy(self, data):
        raw = np.zeros(self.struct_size * self.element_count, np.uint8)
        raw[: data.size] = np.asarray(data).view(np.uint8).ravel()
        self.buffer.copy_from_numpy(raw)
        self.uploads += 1

    def to_numpy(self):
        return self.buffer.to_numpy().view(np.uint8)


def slangpy_falcor(device):
    """A fake ``falcor`` module running on the slangpy ``device`` (module docstring); its
    ``log`` records compiled programs, dispatches and profiler events."""
    log = {"programs": [], "executes": [], "events": [], "frames": 0, "scenes": [], "graphs": []}
    mod = types.ModuleType("fake_falcor")
    mod.log = log
    for scalar in ("float", "int", "uint", "bool"):
        for n in (2, 3, 4):
            setattr(mod, f"{scalar}{n}", vec(scalar, n))

    class Flags:
        ShaderResource, UnorderedAccess = 1, 2
    mod.ResourceBindFlags = Flags

    class Device:
        def create_structured_buffer(self, struct_size, element_count, bind_flags=0):
            assert bind_flags == 3
            return SlangpyBuffer(device, struct_size, element_count)

    class ComputePass:
        def __init__(self, dev, string, cs_entry, compiler_arguments=()):
            assert isinstance(dev, Device)
            module = device.load_module_from_source(f"fake_falcor_{len(log['programs'])}", string)
            self.kernel = device.create_compute_kernel(device.link_program([module], [module.entry_point(cs_entry)]))
            self.root_var = ShaderVar()
            log["programs"].append({"entry": cs_entry, "args": list(compiler_arguments), "source": string})

        def execute(self, x, y=1, z=1):
            self.kernel.dispatch(thread_count=[x, y, z], vars=plain(self.root_var.store))
            log["executes"].append((x, y, z))

    class Profiler:
        enabled = False

        @contextlib.contextmanager
        def event(self, name):
            log["events"].append(name)
            yield

    class Graph:
        def get_output(self, name):
            raise KeyError(name)

    class Testbed:
        def __init__(self, width, height, create_window):
            assert create_window is False
            self.size, self.device, self.profiler, self.render_graph = (width, height), Device(), Profiler(), None

        def load_scene(self, path):
            log["scenes"].append(path)

        def load_render_graph(self, path):
            log["graphs"].append(path)
            return Graph()

        def frame(self):
            log["frames"] += 1

    mod.Testbed, mod.ComputePass = Testbed, ComputePass
    return mod
