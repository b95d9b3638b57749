"""The triple-plane neural material field (seed 003, section 4.1.2), in torch.

Three learnable feature planes and a compact INT8-QAT decoder:

=========  =======================  =================================================
plane      coordinates (s, t)       addressing
=========  =======================  =================================================
``U``      texture ``(u, v)``       **wrap** (the material tiles)
``H``      half vector ``h``        **clamp to edge**; coordinates from
                                    :func:`neumat.angles.plane_coords`
``D``      difference vector ``d``  clamp to edge, same map
=========  =======================  =================================================

Each plane is a float32 parameter ``[rows, cols, C]`` (channel-last, exactly the bundle's
``[row = t, col = s, channel]`` layout), so export is a copy. Features are concatenated in the
order :data:`FEATURE_ORDER` = U, H, D and decoded by a bias-free 4-layer
:class:`neumat.models.qat.QatMlp` ``3C -> hidden -> hidden -> hidden -> 3`` (ReLU between,
output clamped to [0, 1]); the output is the BTF value in the run's output encoding
(:mod:`neumat.output_encoding`: ``"linear"`` divides by ``value_scale``).

Bilinear filtering (the definition the renderers implement; see :func:`bilinear_lookup`)
----------------------------------------------------------------------------------------
Texel ``(r, c)`` has its centre at ``((c + 0.5) / cols, (r + 0.5) / rows)``. For a coordinate
``(s, t)``, in float32 and in this order::

    x = s * cols - 0.5            y = t * rows - 0.5
    c0 = floor(x)   fx = x - c0   r0 = floor(y)   fy = y - r0
    c1 = c0 + 1                   r1 = r0 + 1
    wrap:  c = c mod cols, r = r mod rows   (mathematical modulo: -1 -> cols - 1)
    clamp: c = min(max(c, 0), cols - 1), same for r
    top    = P[r0, c0] * (1 - fx) + P[r0, c1] * fx
    bottom = P[r1, c0] * (1 - fx) + P[r1, c1] * fx
    value  = top * (1 - fy) + bottom * fy

It is written out with gathers rather than ``grid_sample`` so the arithmetic is explicit;
hardware texture units use low-precision (8-bit) filter weights, so a renderer that must match
training bit for bit loads the four texels and evaluates these lines itself.
:func:`neumat.material.bilinear_lookup_np` is the numpy twin (tested bit-identical).

Initialization
--------------
Planes: i.i.d. normal, standard deviation ``plane_init_std`` (default 0.1); decoder: PyTorch's
default Kaiming-uniform ``U(-1/sqrt(n_in), 1/sqrt(n_in))`` for bias-free linear layers, except
that the **last layer's weights are made non-negative** (``|w|``). Its inputs are ReLU outputs
(>= 0), so every output channel starts >= 0 and receives gradient through the [0, 1] clamp;
with signed init a channel whose pre-clamp output starts negative for all inputs never gets a
gradient and stays black (measured: hidden 16, seed 0 lost its blue channel, 21.7 dB instead
of 33 dB with this init). All draws come from the caller's torch RNG (seed it for
reproducibility).

Hidden width (why 32)
---------------------
Held-out INT8 figures through the numpy reference (PSNR peak 1, L1 in BTF units):

======  ===========  ===================  ===================  ==================
hidden  MACs/sample  analytic BTF         leather (synthetic)  INT8 native VNNI
                     3 seeds, mean        one seed             2 threads
======  ===========  ===================  ===================  ==================
16      944          34.30 dB / 0.00710   36.81 dB / 0.00893   66 M samples/s
32      2912         33.92 dB / 0.00629   40.39 dB / 0.00653   60 M samples/s
64      9920         38.31 dB / 0.00486   40.91 dB / 0.00563   25 M samples/s
======  ===========  ===================  ===================  ==================

Analytic: Lambert + Blinn-Phong BTF of the tests (32 directions), U 64^2, H/D 16^2, 2000
steps of 4096; leather: ``neumat.data`` registry material, 128^2 maps, 12 x 12 directions of
64^2 "surface" slices, U 64^2, H/D 16^2, 3000 steps of 8192 (one seed). 16 loses 3.6 dB on
leather; 64 gains 0.5 dB (L1 -14 %) for 3.4x the MACs, 2.4x slower INT8 inference, and
leaves the 24-32-32-32-3 shape the InstantNeuralMaterial CUDA kernel is fixed to.
"""

from __future__ import annotations

import torch
from torch import nn

from .qat import QatMlp, QatMode

FEATURE_ORDER = ("U", "H", "D")
"""Order in which the plane features are concatenated into the decoder's input."""
WRAP = "wrap"
"""Addressing mode: coordinates repeat with period 1 (the U plane: the material tiles)."""
CLAMP = "clamp"
"""Addressing mode: texel indices clamp to the edge (the angular H and D planes)."""
ADDRESSING = {"U": WRAP, "H": CLAMP, "D": CLAMP}
"""Addressing mode of each plane."""
RGB = 3
"""Decoder outputs (linear Rec.709 RGB in the run's output encoding)."""


def bilinear_lookup(plane: torch.Tensor, st: torch.Tensor, addressing: str) -> torch.Tensor:
    """Bilinearly filtered plane values at coordinates ``st`` (see the module docstring).

    Args:
        plane: float32 ``[rows, cols, C]`` (any device; differentiable).
        st: float32 ``[B, 2]`` coordinates ``(s, t)``; ``s`` along columns, ``t`` along rows,
            texel centres at ``(i + 0.5) / res``.
        addressing: :data:`WRAP` or :data:`CLAMP`.

    Returns:
        float32 ``[B, C]``.
    """
    rows, cols, channels = plane.shape
    x = st[:, 0] * cols - 0.5
    y = st[:, 1] * rows - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = (x - x0).unsqueeze(1), (y - y0).unsqueeze(1)
    c0, r0 = x0.long(), y0.long()
    c1, r1 = c0 + 1, r0 + 1
    if addressing == WRAP:
        c0, c1, r0, r1 = c0 % cols, c1 % cols, r0 % rows, r1 % rows
    elif addressing == CLAMP:
        c0, c1 = c0.clamp(0, cols - 1), c1.clamp(0, cols - 1)
        r0, r1 = r0.clamp(0, rows - 1), r1.clamp(0, rows - 1)
    else:
        raise ValueError(f"addressing must be {WRAP!r} or {CLAMP!r}, got {addressing!r}")
    flat = plane.reshape(rows * cols, channels)
    p00, p01 = flat[r0 * cols + c0], flat[r0 * cols + c1]
    p10, p11 = flat[r1 * cols + c0], flat[r1 * cols + c1]
    gx = 1.0 - fx
    top = p00 * gx + p01 * fx
    bottom = p10 * gx + p11 * fx
    return top * (1.0 - fy) + bottom * fy


def mip_chain(plane: torch.Tensor) -> list[torch.Tensor]:
    """The U plane's mip chain (differentiable; :func:`neumat.material.mips.mip_chain`):
    ``[level 0 = plane, level 1 = 2x2 box means of level 0, ...]`` while both sides are even."""
    chain = [plane]
    while chain[-1].shape[0] % 2 == 0 and chain[-1].shape[1] % 2 == 0:
        q = chain[-1]
        r, c, ch = q.shape
        chain.append(q.reshape(r // 2, 2, c // 2, 2, ch).mean(dim=(1, 3)))
    return chain


def trilinear_lookup(plane: torch.Tensor, st: torch.Tensor, footprint: torch.Tensor,
                     levels: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Wrapping lookup of ``plane`` through a mip chain by the footprints ``[B]`` (log2 UV
    units), as the renderer's feature LoD (:func:`neumat.material.mips.trilinear_lookup_np`):
    ``lod = min(footprint + log2(cols), levels - 1)``; lod <= 0 (or -inf): the level-0 bilinear
    lookup; otherwise levels floor(lod) and floor(lod) + 1 blended by frac(lod). The chain is
    ``[plane, *levels]`` (learned coarse levels) or, without ``levels``, :func:`mip_chain`."""
    out = bilinear_lookup(plane, st, WRAP)
    cols = plane.shape[1]
    lod = footprint + torch.log2(torch.tensor(float(cols), device=st.device))
    minified = torch.nonzero(lod > 0).squeeze(1)
    if minified.numel() == 0:
        return out
    chain = [plane, *levels] if levels else mip_chain(plane)
    lod = lod[minified].clamp(max=float(len(chain) - 1))
    lo = torch.floor(lod)
    frac = (lod - lo).unsqueeze(1)
    lo = lo.long()
    blended = torch.zeros((minified.numel(), plane.shape[2]), dtype=plane.dtype, device=plane.device)
    for level in range(len(chain)):
        sel = torch.nonzero(lo == level).squeeze(1)
        if sel.numel() == 0:
            continue
        a = bilinear_lookup(chain[level], st[minified[sel]], WRAP)
        b = bilinear_lookup(chain[min(level + 1, len(chain) - 1)], st[minified[sel]], WRAP)
        blended = blended.index_copy(0, sel, a + (b - a) * frac[sel])
    return out.index_copy(0, minified, blended)


class TriplePlaneField(nn.Module):
    """U/H/D feature planes + INT8-QAT decoder: (uv, h, d) plane coordinates -> scaled RGB.

    Args:
        u_res: U plane side in texels (seed: 400).
        hd_res: H and D plane side in texels (seed: 50).
        channels: features per plane ``C`` (seed: 8; the decoder reads ``3 C``).
        hidden: decoder hidden width (three hidden layers).
        plane_init_std: standard deviation of the planes' normal initialization.

    Attributes:
        planes: ``nn.ParameterDict`` ``{"U", "H", "D"}`` -> float32 ``[res, res, C]``.
        u_levels: ``nn.ParameterList`` of the learned coarse U levels 1..L, float32
            ``[res >> l, res >> l, C]`` (the box chain of the initial U plane until
            :meth:`start_pyramid`; no gradient before it).
        mlp: :class:`QatMlp` with widths ``(3C, hidden, hidden, hidden, 3)``.
        pyramid: whether footprint lookups read :attr:`u_levels` (set by :meth:`start_pyramid`)
            instead of the box chain of level 0.
    """

    def __init__(
        self, u_res: int = 400, hd_res: int = 50, channels: int = 8, hidden: int = 32, plane_init_std: float = 0.1
    ) -> None:
        super().__init__()
        self.u_res, self.hd_res, self.channels, self.hidden = int(u_res), int(hd_res), int(channels), int(hidden)
        self.plane_init_std = float(plane_init_std)
        sides = {"U": self.u_res, "H": self.hd_res, "D": self.hd_res}
        self.planes = nn.ParameterDict({
            p: nn.Parameter(torch.randn(sides[p], sides[p], self.channels) * self.plane_init_std)
            for p in FEATURE_ORDER
        })
        self.mlp = QatMlp((len(FEATURE_ORDER) * self.channels, self.hidden, self.hidden, self.hidden, RGB))
        with torch.no_grad():
            self.mlp.layers[-1].weight.abs_()  # outputs start >= 0: no channel dead at the clamp
            box = [level.detach().clone() for level in mip_chain(self.planes["U"].detach())[1:]]
        self.u_levels = nn.ParameterList([nn.Parameter(level, requires_grad=False) for level in box])
        self.register_buffer("pyramid_started", torch.zeros((), dtype=torch.bool))

    @property
    def pyramid(self) -> bool:
        """Whether footprint lookups read the learned levels (see the class docstring)."""
        return bool(self.pyramid_started)

    def start_pyramid(self) -> None:
        """Begin fitting the learned coarse U levels (NeuMIP-style decoupled pyramid): reset
        them to the box chain of the trained level 0, let only them receive gradients (planes
        U/H/D and the decoder frozen) and read them in footprint lookups from now on."""
        with torch.no_grad():
            for level, box in zip(self.u_levels, mip_chain(self.planes["U"].detach())[1:], strict=True):
                level.copy_(box)
        for p in [*self.plane_parameters(), *self.mlp_parameters()]:
            p.requires_grad_(False)
        for level in self.u_levels:
            level.requires_grad_(True)
        self.pyramid_started.fill_(True)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As :meth:`torch.nn.Module.load_state_dict`; states saved before the learned LoD pyramid
        (no ``u_levels.*`` / ``pyramid_started``) keep this field's values for those, and a state
        whose pyramid phase had started freezes everything but the levels again."""
        state = dict(state_dict)
        for key, value in super().state_dict().items():
            if (key.startswith("u_levels.") or key == "pyramid_started") and key not in state:
                state[key] = value
        result = super().load_state_dict(state, strict, assign)
        if self.pyramid:
            for p in [*self.plane_parameters(), *self.mlp_parameters()]:
                p.requires_grad_(False)
            for level in self.u_levels:
                level.requires_grad_(True)
        return result

    def extra_repr(self) -> str:
        return (
            f"u_res={self.u_res}, hd_res={self.hd_res}, channels={self.channels}, hidden={self.hidden}, "
            f"order={''.join(FEATURE_ORDER)}"
        )

    def features(self, uv: torch.Tensor, h: torch.Tensor, d: torch.Tensor,
                 footprint: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenated plane features ``[B, 3C]`` (order U, H, D) at float32 ``[B, 2]`` coordinates;
        with ``footprint`` ``[B]`` (log2 UV units) the U plane is read through its mip chain
        (:func:`trilinear_lookup`), exactly bilinear where the footprint is at most a texel."""
        u = (bilinear_lookup(self.planes["U"], uv, WRAP) if footprint is None
             else trilinear_lookup(self.planes["U"], uv, footprint, list(self.u_levels) if self.pyramid else None))
        coords = {"H": h, "D": d}
        return torch.cat([u, *(bilinear_lookup(self.planes[p], coords[p], ADDRESSING[p]) for p in FEATURE_ORDER[1:])],
                         dim=1)

    def forward(self, uv: torch.Tensor, h: torch.Tensor, d: torch.Tensor,
                footprint: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded linear RGB ``[B, 3]`` in [0, 1] (BTF value in the run's output encoding).

        Args:
            uv: float32 ``[B, 2]`` texture coordinates (wrapped into the tile).
            h, d: float32 ``[B, 2]`` H/D plane coordinates from :func:`neumat.angles.plane_coords`.
            footprint: optional float32 ``[B]`` pixel footprints (log2 UV units) of prefiltered
                samples (:meth:`features`).
        """
        return self.mlp(self.features(uv, h, d, footprint))

    def angular_roughness(self) -> torch.Tensor:
        """Mean squared difference between neighbouring texels of the H and D planes (0-d).

        A smoothness prior for the angular planes: a BTF measures a few hundred direction
        pairs, so many H/D texels see no sample; penalizing their differences fills them from
        their neighbours instead of leaving initialization noise there.
        """
        total = torch.zeros((), device=self.planes["H"].device)
        for p in ("H", "D"):
            plane = self.planes[p]
            total = total + (plane[1:] - plane[:-1]).square().mean() + (plane[:, 1:] - plane[:, :-1]).square().mean()
        return total

    def plane_parameters(self) -> list[nn.Parameter]:
        """The three feature planes (the optimizer's first parameter group)."""
        return [self.planes[p] for p in FEATURE_ORDER]

    def mlp_parameters(self) -> list[nn.Parameter]:
        """The decoder weights (the optimizer's second parameter group)."""
        return list(self.mlp.parameters())

    def set_qat_mode(self, mode: QatMode | str) -> None:
        """Switch the decoder between float, observe and quantize forward passes."""
        self.mlp.set_mode(mode)
