"""Point-sampled synthetic BTFs: every sample has its own (uv, ωi, ωo), rendered exactly.

A slice BTF (:class:`~neumat.data.synthetic.SyntheticBtf`) measures a material at a fixed
grid of V × L direction pairs (12 × 12 by default) and S² pixels per pair; a network trained
on it sees 130 angular configurations and extrapolates between them (held-out relative L1 of
26–56 % on user maps), and it sees the maps only through S² bilinear samples per pair. Here
each training sample draws its own texture coordinate and direction pair and is rendered
with true displacement at that point (:meth:`SliceRenderer.render_samples`, ~0.2 s per
65,536 samples on one core), so the data is continuous in uv and in angle and never repeats.

Training directions (:func:`sample_directions`): ωo uniform in solid angle over the cap
θ <= ``theta_max_deg``; ωi uniform over the same cap with probability ``1 −
specular_fraction``, otherwise the mirror of ωo about a half vector drawn around the normal
(θh half-normal with scale ``specular_spread_deg``) — where glossy materials vary fastest.

Prefiltered samples (:attr:`PointBtfConfig.lod_fraction` of the training draws): the mean value
over a square uv box of log-uniform side, from one map texel to the whole tile, estimated from
``lod_taps``² stratified point values with the sample's directions, its side in
:attr:`BtfBatch.footprint` — what a pixel covering that box sees, for materials read with
feature LoD (:mod:`neumat.material.mips`).

Held-out evaluation uses the fixed pairs of :data:`HELDOUT_PAIRS` (head-on, grazing view and
light, exact and near mirror, back-scatter, oblique ones), rendered as S × S images at the
pixel-centre uv; a ``"heldout"`` sample draws one of these pairs. Training never samples
them exactly (the training distribution is continuous), so they measure interpolation in
angle, which is what a renderer asks of a material.

Frames and units as :mod:`neumat.data.source`: +z = macro normal, directions point away from
the surface, values are linear Rec.709 BTF values under unit irradiance at normal incidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .directions import spherical_to_vector
from .errors import DataError
from .pbr import PbrMaterial
from .slice_renderer import NORMAL_SOURCES, UV_SPACES, SliceRenderer, sample_grid
from .source import BtfBatch, BtfSource, concat_batches

HELDOUT_PAIRS: tuple[tuple[str, tuple[float, float], tuple[float, float]], ...] = (
    ("head_on", (0.0, 0.0), (0.0, 0.0)),
    ("head_on_view", (45.0, 30.0), (0.0, 0.0)),
    ("head_on_light", (0.0, 0.0), (50.0, 135.0)),
    ("grazing_view", (40.0, 20.0), (75.0, 200.0)),
    ("grazing_light", (78.0, 110.0), (30.0, 300.0)),
    ("mirror", (45.0, 60.0), (45.0, 240.0)),
    ("near_mirror", (35.0, 10.0), (35.5, 190.5)),
    ("grazing_mirror", (72.0, 45.0), (72.0, 225.0)),
    ("back_scatter", (55.0, 130.0), (55.0, 130.0)),
    ("oblique_a", (60.0, 0.0), (20.0, 90.0)),
    ("oblique_b", (25.0, 250.0), (65.0, 160.0)),
    ("oblique_c", (30.0, 330.0), (50.0, 40.0)),
)
"""Fixed held-out pairs: (name, (θi, φi), (θo, φo)) in degrees (θ from +z, φ from +x to +y);
also the pairs of the fidelity suite (:mod:`neumat.fidelity.pairs` says why each is there)."""
MAX_REDRAW_ROUNDS = 200
"""Rounds of redrawing masked (NaN) samples before :meth:`PointBtf.sample` gives up (a 78°
view of deep gravel sees ~15 % of the surface points; 0.85^200 is ~1e-14)."""


@dataclass
class PointBtfConfig:
    """How a point-sampled synthetic BTF draws and renders its samples."""

    uv_space: str = "surface"
    """``"surface"`` (parallax removed, for height-field tracing renderers; masked points are
    redrawn) or ``"reference"`` (parallax in the data)."""
    theta_max_deg: float = 85.0
    """Largest polar angle of training directions, degrees (held-out pairs reach 78°)."""
    specular_fraction: float = 0.35
    """Fraction of training samples whose ωi mirrors ωo about a half vector near the normal."""
    specular_spread_deg: float = 20.0
    """Scale of the half vector's polar angle (half-normal) in those samples, degrees."""
    retro_fraction: float = 0.0
    """Fraction of training samples whose ωi lies near ωo (back-scatter: θd ≈ 0 at every θh,
    where a relief's facets that face the light glint), ωo jittered by a polar angle drawn
    half-normal with scale ``retro_spread_deg``."""
    retro_spread_deg: float = 10.0
    """Scale of the angle between ωi and ωo in the back-scatter samples, degrees."""
    heldout_resolution: int = 64
    """Side in pixels of each held-out image."""
    shadows: bool = False
    """Multiply by the self-shadowing test toward the light. Off by default: a surface-space
    material is rendered with height-field tracing, whose shadow pass traces that visibility
    exactly, so the network learns the smooth unshadowed BTF (a hard shadow edge that moves
    with ωi is what a triple-plane network blurs most: leather's held-out relative L1 at
    θi = 78° was 31 % with shadows in the data)."""
    normal_source: str = "height"
    """Shading normals from ``"height"`` (gradient) or ``"map"`` (the material's normal map)."""
    pool_size: int = 4_000_000
    """Training samples rendered once (~30 s on one core) and drawn from at random by every
    training batch; 0: render fresh samples for every batch (about 5x slower training on CPU,
    where rendering costs ~7 µs per sample against ~1.5 µs for a training step's share)."""
    pool_seed: int = 0
    """Seed of the pool's uv and directions."""
    lod_fraction: float = 0.0
    """Fraction of training samples that are *prefiltered*: the mean value over a square uv box
    (:attr:`BtfBatch.footprint`) instead of a point value, so that a network reading its U plane
    through a box mip chain (feature LoD, :mod:`neumat.material.mips`) learns what a pixel
    covering many texels sees. The box side is log-uniform from one texel of the plane read with
    LoD (:attr:`lod_res`; the renderers' rule counts U-plane texels) to the whole tile;
    its value is the mean of ``lod_taps``² stratified point values with the sample's directions
    (masked points left out, as a pixel does not see them; each point weighted by the area its
    facet covers seen from ωo, as in a pixel)."""
    lod_taps: int = 2
    """Stratified taps per side of a prefiltered sample's box (``lod_taps``² point renders)."""
    lod_res: int = 0
    """Texels per tile side of the feature plane the prefiltered boxes are sized for: box sides
    from one of its texels to the tile (footprints in ``[-log2(lod_res), 0]``); the trainer sets
    its U plane's side. 0: the map's side."""
    lod_pool_size: int = 1 << 20
    """Prefiltered samples rendered once for :meth:`PointBtf.sample`'s ``"prefiltered"`` split
    (its own pool and seed, so the point pool is the same with or without it; ~4x the render
    cost of as many point samples); 0: fresh boxes every batch."""

    def __post_init__(self) -> None:
        if self.uv_space not in UV_SPACES:
            raise DataError(f"uv_space must be one of {UV_SPACES}, got {self.uv_space!r}")
        if self.normal_source not in NORMAL_SOURCES:
            raise DataError(f"normal_source must be one of {NORMAL_SOURCES}, got {self.normal_source!r}")
        if not 0.0 < self.theta_max_deg < 90.0 or not 0.0 <= self.specular_fraction <= 1.0:
            raise DataError("theta_max_deg must be in (0, 90) and specular_fraction in [0, 1]")
        if not (0.0 <= self.retro_fraction <= 1.0 - self.specular_fraction and self.retro_spread_deg > 0):
            raise DataError("retro_fraction must be in [0, 1 - specular_fraction] and retro_spread_deg > 0")
        if self.specular_spread_deg <= 0 or self.heldout_resolution < 1 or self.pool_size < 0:
            raise DataError("specular_spread_deg must be > 0, heldout_resolution >= 1, pool_size >= 0")
        if not (0.0 <= self.lod_fraction <= 1.0 and 1 <= self.lod_taps <= 8):
            raise DataError("lod_fraction must be in [0, 1] and lod_taps in [1, 8]")
        if self.lod_res < 0 or self.lod_pool_size < 0:
            raise DataError("lod_res and lod_pool_size must be >= 0")


def uniform_cap(n: int, theta_max_deg: float, rng: np.random.Generator) -> np.ndarray:
    """[n, 3] float64 unit vectors uniform in solid angle over the cap θ <= ``theta_max_deg``."""
    cos_t = 1.0 - rng.random(n) * (1.0 - np.cos(np.radians(theta_max_deg)))
    return spherical_to_vector(np.arccos(cos_t), 2.0 * np.pi * rng.random(n))


def sample_directions(n: int, cfg: PointBtfConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(wi, wo)`` [n, 3] float64 training directions (module docstring), both in the cap."""
    wo = uniform_cap(n, cfg.theta_max_deg, rng)
    wi = uniform_cap(n, cfg.theta_max_deg, rng)
    share = rng.random(n)
    mirrored = share < cfg.specular_fraction
    theta_h = np.abs(rng.normal(0.0, np.radians(cfg.specular_spread_deg), n))
    h = spherical_to_vector(theta_h, 2.0 * np.pi * rng.random(n))
    reflected = 2.0 * np.sum(wo * h, axis=1, keepdims=True) * h - wo
    reflected /= np.linalg.norm(reflected, axis=1, keepdims=True)
    in_cap = np.cos(np.radians(cfg.theta_max_deg))
    usable = mirrored & (reflected[:, 2] >= in_cap)
    wi[usable] = reflected[usable]
    if cfg.retro_fraction > 0:
        retro = (share >= cfg.specular_fraction) & (share < cfg.specular_fraction + cfg.retro_fraction)
        near = _jitter(wo, np.radians(cfg.retro_spread_deg), rng)
        usable = retro & (near[:, 2] >= in_cap)
        wi[usable] = near[usable]
    return wi, wo


def _jitter(w: np.ndarray, spread: float, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors at a half-normal polar angle (scale ``spread``, radians) from ``w`` [n, 3],
    uniform in azimuth around it."""
    n = len(w)
    local = spherical_to_vector(np.abs(rng.normal(0.0, spread, n)), 2.0 * np.pi * rng.random(n))
    helper = np.where(np.abs(w[:, 2:3]) < 0.9, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]]))
    t = np.cross(helper, w)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    b = np.cross(w, t)
    out = local[:, :1] * t + local[:, 1:2] * b + local[:, 2:3] * w
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def heldout_directions() -> tuple[np.ndarray, np.ndarray]:
    """(wi [P, 3], wo [P, 3]) float64 of :data:`HELDOUT_PAIRS`, in order."""
    wi = np.array([spherical_to_vector(*np.radians(a)) for _, a, _ in HELDOUT_PAIRS])
    wo = np.array([spherical_to_vector(*np.radians(b)) for _, _, b in HELDOUT_PAIRS])
    return wi, wo


class PointBtf(BtfSource):
    """The BTF of a :class:`PbrMaterial`, each sample rendered at its own uv and directions.

    Args:
        material: the material (maps + height scale).
        config: sampling and rendering settings.
    """

    def __init__(self, material: PbrMaterial, config: PointBtfConfig | None = None) -> None:
        self.material = material
        self.config = config or PointBtfConfig()
        self.name = material.name
        self.uv_space = self.config.uv_space
        self.renderer = SliceRenderer(material, self.config.normal_source)
        self._heldout_wi, self._heldout_wo = heldout_directions()
        self._heldout_images: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._pool: BtfBatch | None = None
        self._lod_pool: BtfBatch | None = None

    def sample(self, n: int, rng: np.random.Generator, split: str = "train") -> BtfBatch:
        """``n`` samples: uv uniform in [0, 1)²; directions from :func:`sample_directions`
        (``"train"``; rows of the :meth:`pool` when ``pool_size`` > 0) or one of the held-out
        pairs each (``"heldout"``), or prefiltered boxes only (``"prefiltered"``, the learned LoD
        pyramid's samples: rows of :meth:`lod_pool`, or fresh boxes when ``lod_pool_size`` is 0).
        Masked points are redrawn at new uv (training samples with new
        directions too, so grazing views count as often as a renderer sees their visible points),
        so every value is finite."""
        if n < 0:
            raise DataError(f"n must be >= 0, got {n}")
        if split == "prefiltered":
            if not self.config.lod_pool_size:
                return self._draw_prefiltered(n, rng)
            pool = self.lod_pool()
            rows = rng.integers(0, len(pool), size=n)
            return BtfBatch(uv=pool.uv[rows], wi=pool.wi[rows], wo=pool.wo[rows], rgb=pool.rgb[rows],
                            footprint=pool.footprint[rows])
        if split == "train" and self.config.pool_size:
            pool = self.pool()
            rows = rng.integers(0, len(pool), size=n)
            return BtfBatch(uv=pool.uv[rows], wi=pool.wi[rows], wo=pool.wo[rows], rgb=pool.rgb[rows],
                            footprint=None if pool.footprint is None else pool.footprint[rows])
        return self._draw(n, rng, split)

    def _draw(self, n: int, rng: np.random.Generator, split: str) -> BtfBatch:
        """``n`` freshly rendered samples of ``split`` (see :meth:`sample`); for ``"train"`` the
        last ``round(lod_fraction n)`` are prefiltered (:meth:`_draw_prefiltered`)."""
        boxes = int(round(self.config.lod_fraction * n)) if split == "train" else 0
        if boxes:
            return concat_batches([self._draw_points(n - boxes, rng, split), self._draw_prefiltered(boxes, rng)])
        return self._draw_points(n, rng, split)

    def _draw_points(self, n: int, rng: np.random.Generator, split: str) -> BtfBatch:
        """``n`` freshly rendered point samples of ``split``."""
        if split == "train":
            wi, wo = sample_directions(n, self.config, rng)
        elif split == "heldout":
            pick = rng.integers(0, len(self._heldout_wi), size=n)
            wi, wo = self._heldout_wi[pick], self._heldout_wo[pick]
        else:
            raise DataError(f"split must be 'train' or 'heldout', got {split!r}")
        wi, wo = wi.astype(np.float32), wo.astype(np.float32)  # render what the batch stores
        uv = rng.random((n, 2), dtype=np.float32)
        rgb = self._render(uv, wi, wo)
        for _ in range(MAX_REDRAW_ROUNDS):
            bad = np.flatnonzero(~np.all(np.isfinite(rgb), axis=1))
            if bad.size == 0:
                break
            uv[bad] = rng.random((bad.size, 2), dtype=np.float32)
            if split == "train":  # new directions too: hidden points are not what a renderer sees
                new_wi, new_wo = sample_directions(bad.size, self.config, rng)
                wi[bad], wo[bad] = new_wi.astype(np.float32), new_wo.astype(np.float32)
            rgb[bad] = self._render(uv[bad], wi[bad], wo[bad])
        else:
            raise DataError(f"{self.name}: could not draw visible samples (the surface hides "
                            "almost every point from these views)")
        return BtfBatch(uv=uv, wi=wi, wo=wo, rgb=rgb)

    def _draw_prefiltered(self, n: int, rng: np.random.Generator) -> BtfBatch:
        """``n`` prefiltered training samples (:attr:`PointBtfConfig.lod_fraction`): box centre
        uv uniform, training directions, log2 box side uniform in [-log2(lod_res), 0] (from one
        texel of the plane read with LoD to the tile); boxes whose every tap is masked are redrawn
        with new centres and directions."""
        k = self.config.lod_taps
        side = int(self.config.lod_res or self.material.height.shape[1])
        uv = rng.random((n, 2), dtype=np.float32)
        wi, wo = (a.astype(np.float32) for a in sample_directions(n, self.config, rng))
        footprint = (rng.random(n, dtype=np.float32) - 1.0) * np.float32(np.log2(side))
        rgb = np.full((n, 3), np.nan, np.float32)
        todo = np.arange(n)
        for _ in range(MAX_REDRAW_ROUNDS):
            rgb[todo] = self._box_mean(uv[todo], wi[todo], wo[todo], footprint[todo], k, rng)
            todo = np.flatnonzero(~np.all(np.isfinite(rgb), axis=1))
            if todo.size == 0:
                return BtfBatch(uv=uv, wi=wi, wo=wo, rgb=rgb, footprint=footprint)
            uv[todo] = rng.random((todo.size, 2), dtype=np.float32)
            new_wi, new_wo = sample_directions(todo.size, self.config, rng)
            wi[todo], wo[todo] = new_wi.astype(np.float32), new_wo.astype(np.float32)
        raise DataError(f"{self.name}: could not draw visible prefiltered samples (the surface hides "
                        "almost every point from these views)")

    def _box_mean(self, uv: np.ndarray, wi: np.ndarray, wo: np.ndarray, footprint: np.ndarray, k: int,
                  rng: np.random.Generator) -> np.ndarray:
        """[N, 3] float32 mean of k² stratified point values in the boxes of side 2^footprint
        centred on ``uv`` (wrapping), each weighted by :meth:`_projected_area` ("surface" uv);
        NaN where every tap is masked."""
        n = len(uv)
        cells = (np.stack(np.meshgrid(np.arange(k), np.arange(k)), -1).reshape(1, k * k, 2) + rng.random((n, k * k, 2)))
        offsets = (cells / k - 0.5) * np.exp2(footprint.astype(np.float64))[:, None, None]
        taps = ((uv[:, None, :] + offsets) % 1.0).astype(np.float32).reshape(-1, 2)
        wo_taps = np.repeat(wo, k * k, axis=0)
        values = self._render(taps, np.repeat(wi, k * k, axis=0), wo_taps).reshape(n, k * k, 3)
        weight = (self._projected_area(taps, wo_taps).reshape(n, k * k, 1) if self.uv_space == "surface"
                  else np.ones((n, k * k, 1)))
        weight = np.where(np.isfinite(values).all(axis=2, keepdims=True), weight, 0.0)
        total = (np.where(weight > 0, values, 0.0) * weight).sum(axis=1)
        norm = weight.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(norm > 0, total / norm, np.nan).astype(np.float32)

    def _projected_area(self, uv: np.ndarray, wo: np.ndarray) -> np.ndarray:
        """[N] float64 area that the displaced surface around ``uv`` covers seen from ``wo``, per
        unit of the flat tile's (what weighs a surface point in a pixel's mean): ``1 − ∇h · ωo_xy
        / ωo_z`` with ∇h the relief's slope (central differences over a quarter texel, UV units),
        clamped at 0 (facets turned away from the viewer)."""
        uv = np.asarray(uv, np.float64)
        eps = 0.25 / self.material.height.shape[1]
        du, dv = np.array([[eps, 0.0]]), np.array([[0.0, eps]])
        field = self.renderer.field
        gu = (field.height_at(uv + du) - field.height_at(uv - du)) / (2 * eps)
        gv = (field.height_at(uv + dv) - field.height_at(uv - dv)) / (2 * eps)
        wo = np.asarray(wo, np.float64)
        return np.maximum(1.0 - (gu * wo[:, 0] + gv * wo[:, 1]) / wo[:, 2], 0.0)

    def limit_pool(self, samples: int) -> None:
        """Shrink the training pool to ``samples`` (before it is rendered): a run that draws
        fewer samples than ``pool_size`` renders no more than it draws."""
        if self._pool is None and 0 < samples < self.config.pool_size:
            self.config.pool_size = int(samples)

    def limit_lod_pool(self, samples: int) -> None:
        """Shrink the prefiltered pool to ``samples`` (before it is rendered), as :meth:`limit_pool`."""
        if self._lod_pool is None and 0 < samples < self.config.lod_pool_size:
            self.config.lod_pool_size = int(samples)

    def pool(self) -> BtfBatch:
        """The training pool (``pool_size`` fresh training samples from ``pool_seed``), rendered
        on first use with a progress bar, in chunks."""
        if self._pool is None:
            self._pool = self._render_pool(self.config.pool_size, 1 << 16, 0x504F4F4C, "samples",
                                           lambda n, rng: self._draw(n, rng, "train"))
        return self._pool

    def lod_pool(self) -> BtfBatch:
        """The prefiltered pool (``lod_pool_size`` prefiltered samples, seeded from ``pool_seed``
        in a stream of their own), rendered on first use with a progress bar, in chunks."""
        if self._lod_pool is None:
            self._lod_pool = self._render_pool(self.config.lod_pool_size, 1 << 14, 0x4C4F4450,
                                               "prefiltered samples", self._draw_prefiltered)
        return self._lod_pool

    def _render_pool(self, n: int, chunk: int, stream: int, what: str, draw) -> BtfBatch:
        """``n`` samples from ``draw(count, rng)`` in chunks of ``chunk``, with a progress bar;
        rng seeded from (``pool_seed``, ``stream``)."""
        from rich.progress import Progress

        rng = np.random.default_rng(np.random.SeedSequence([self.config.pool_seed, stream]))
        parts = []
        with Progress(transient=True) as progress:
            task = progress.add_task(f"rendering {n:,} {what} of {self.name}", total=n)
            for a in range(0, n, chunk):
                parts.append(draw(min(chunk, n - a), rng))
                progress.advance(task, min(chunk, n - a))
        return concat_batches(parts)

    def heldout_images(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(wi [3], wo [3], image [S, S, 3])`` float32 per :data:`HELDOUT_PAIRS` entry, rendered
        once at the pixel-centre uv; NaN pixels are points masked from ωo (leave them out)."""
        if self._heldout_images is None:
            s = self.config.heldout_resolution
            uv = sample_grid(s)
            self._heldout_images = []
            for wi, wo in zip(self._heldout_wi.astype(np.float32), self._heldout_wo.astype(np.float32), strict=True):
                image = self.renderer.render_points(uv, wo.astype(np.float64), wi[None].astype(np.float64),
                                                    self.uv_space, self.config.shadows)[0]
                self._heldout_images.append((wi, wo, image.reshape(s, s, 3).astype(np.float32)))
        return self._heldout_images

    def _render(self, uv: np.ndarray, wi: np.ndarray, wo: np.ndarray) -> np.ndarray:
        """[N, 3] float32 values at the float32 ``uv``, ``wi``, ``wo`` training sees."""
        values = self.renderer.render_samples(*(a.astype(np.float64) for a in (uv, wi, wo)), self.uv_space,
                                              self.config.shadows)
        return values.astype(np.float32)

    def describe(self) -> dict:
        """The settings as a JSON-serializable dict (for provenance in bundles / reports)."""
        return {"material": self.material.name, "material_hash": self.material.content_hash(),
                "sampling": "points", **asdict(self.config)}
