"""Training configuration: dataclasses with one docstring per field, and their ranges.

A run is fully described by a :class:`TrainConfig`; the resolved config is written as
``config.json`` beside the checkpoints and embedded in each checkpoint. Loading, saving and
``--set`` overrides: :mod:`.config_io`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..angles import PLANE_PARAMETERIZATION, PLANE_PARAMETERIZATIONS
from ..bundle.container import MAX_TENSOR_BYTES
from ..bundle.bundle import MAX_PLANE_RES
from ..output_encoding import ENCODINGS
from .config_io import ConfigError, non_finite_fields


@dataclass
class ModelConfig:
    """Triple-plane field and decoder sizes (seed 003, table a)."""

    u_res: int = 0
    """U (spatial) plane side in texels; one texel spans 1/u_res of the material tile. 0:
    automatic, the side of the material's maps capped at 512 (1024² maps get 512², 256² maps
    256²; measured BTFs 400; see README "Capacity" for the trade-off)."""
    hd_res: int = 100
    """H and D (angular) plane side in texels. A texel spans ~1.8° of half-vector angle at 100 (the
    seed's 50: ~3.6°, wider than a glossy GGX lobe). Measured on the fidelity suite's hammered
    copper (6000 steps, held-out INT8 relative L1 of the material alone): 8.6 % at 100 against
    19.8 % at 50; rendered against Mitsuba at the same rays, 8.2 % (README "Command line");
    the rough basket weave is unchanged (13.3 % at both against the reference of 2026-12-05).
    The planes grow by 2 x 8 x (100² - 50²) floats = 480 KB per bundle."""
    channels: int = 8
    """Feature channels per plane; the decoder reads 3 * channels values (U, H, D)."""
    hidden: int = 32
    """Decoder hidden width (3 hidden layers). 32 is the measured knee of quality vs INT8 cost."""
    plane_init_std: float = 0.1
    """Standard deviation of the planes' normal initialization (features, unitless)."""
    angle_param: str = PLANE_PARAMETERIZATION
    """H/D plane parameterization of new runs (:data:`neumat.angles.PLANE_PARAMETERIZATIONS`):
    the relief frame (default) or ``"minrot-concentric-v2"`` (macro frame, for ablations)."""


@dataclass
class OptimConfig:
    """AdamW with two parameter groups and a cosine schedule with warm restarts (SGDR)."""

    lr_planes: float = 1e-2
    """Peak learning rate of the feature planes (group 1)."""
    lr_mlp: float = 3e-3
    """Peak learning rate of the decoder MLP (group 2)."""
    weight_decay_planes: float = 0.0
    """AdamW decoupled weight decay of the planes (0: texels seen rarely are not shrunk)."""
    weight_decay_mlp: float = 1e-4
    """AdamW decoupled weight decay of the decoder (keeps weights small for INT8)."""
    betas: tuple[float, float] = (0.9, 0.99)
    """Adam moment decay rates (beta1, beta2)."""
    eps: float = 1e-8
    """Adam denominator epsilon."""
    warmup_steps: int = 100
    """Linear learning-rate warm-up, in optimizer steps (then the cosine schedule starts)."""
    restart_period: int = 0
    """Length of the first cosine cycle T_0, in optimizer steps; 0: one cycle over the whole run
    (so the rate decays by the end however many steps a time budget allows)."""
    restart_mult: int = 2
    """Each cycle is restart_mult times longer than the previous one (T_mult >= 1)."""
    min_lr_ratio: float = 0.02
    """Learning rate at the end of a cycle, as a fraction of the peak."""
    grad_clip: float = 0.0
    """Clip the global gradient norm to this value (0: no clipping)."""
    angular_smoothness: float = 1.0
    """Weight of the H/D-plane smoothness penalty (TriplePlaneField.angular_roughness) added to
    the L1 loss; 0: none. Measured held-out INT8 PSNR for 0 / 0.01 / 0.1 / 1 / 10: leather
    40.4 / 43.5 / 44.5 / 45.8 / 45.7 dB, fabric 33.6 / - / 35.1 / 37.6 / 37.3 dB."""
    relative_l2: float = 0.1
    """Weight of the relative L2 on decoded values added to the L1 data loss (:mod:`.data_loss`;
    0: none). It makes the fit unbiased in the mean where a feature texel cannot resolve the
    BTF (deep relief at grazing mirror configurations). Measured on the fidelity suite (relief
    frame v4, 6000 steps + the LoD pyramid, rendered INT8 vs Mitsuba, relative L1 mean / FLIP /
    worst pair), 0 -> 0.1: basket weave 3.2 % / 0.041 / grazing mirror 22.6 % (15 % dark at the
    exact hits) -> 3.8 % / 0.052 / 18.9 % (3 % dark); hammered copper (0 at 3643 steps) 5.6 % /
    0.060 / back-scatter 14.0 % -> 5.7 % / 0.074 / 12.4 %. The term costs FLIP and ~2 % of
    brightness elsewhere (README "Fidelity"). A weight of 0.03 stops short: basket 3.2 % / 0.046
    / 20.7 % (6 % dark), copper 6.1 % / 0.069 / 13.1 %."""


@dataclass
class QatConfig:
    """INT8 quantization-aware training phases (seed 003, section 4.1.3)."""

    enabled: bool = True
    """Fake-quantize the decoder after the observe phase; False: observe only (post-training INT8)."""
    quantize_start: float = 0.3
    """Fraction of the steps spent in the observe phase (FP32 forward, ranges recorded); > 0."""
    finetune_start: float = 0.85
    """Fraction of the steps after which observers freeze and the learning rate is scaled down."""
    finetune_lr_scale: float = 0.1
    """Learning-rate multiplier of the frozen-observer quantized fine-tune phase."""
    observer_momentum: float = 0.01
    """EMA weight of each optimizer step's global max|activation| in the activation ranges."""


@dataclass
class DataConfig:
    """Sampling of the training and validation batches."""

    batch_size: int = 16384
    """Samples per optimizer step, over all processes and accumulation steps (global batch;
    the GPU preset ``assets/configs/train_gpu.json`` uses 65536)."""
    accum_steps: int = 1
    """Micro-batches per optimizer step and process (gradient accumulation)."""
    chunks: int = 8
    """Independently seeded pieces of each global batch; a multiple of world_size * accum_steps.
    The global batch does not depend on the process count, so 1 and N processes train alike.
    Each piece is one ``BtfSource.sample`` call (frame-cached sources fetch frames per call)."""
    val_samples: int = 65536
    """Fixed held-out (uv, direction) samples for the periodic validation."""
    value_scale: float = 0.0
    """BTF values are divided by this so targets fit the decoder's [0, 1] output; 0: automatic
    (the value_quantile quantile of calibration_samples training values)."""
    value_quantile: float = 0.999
    """Quantile of all training RGB values used as the automatic value_scale."""
    calibration_samples: int = 65536
    """Training samples drawn (with a fixed seed) to calibrate the automatic value_scale."""
    output_encoding: str = "log-v1"
    """How the decoder's [0, 1] output maps to BTF values (:mod:`neumat.output_encoding`):
    "log-v1" (s (2^(k y) - 1), s = value_scale if set, else the median training value; k
    reaches 4x the largest calibration value; the L1 loss then weighs errors relative to the
    value, from the darkest off-specular direction to the brightest highlight), "linear"
    (x value_scale; values above it clip) or "reinhard-v1" (s y / (1 - y), s = value_scale if
    set, else a quarter of the value_quantile quantile). Measured on the fidelity suite (6000
    steps, rendered INT8 vs Mitsuba 3, mean of 12 held-out pairs, relative L1 / FLIP): glossy
    hammered copper 20.1 % / 0.122 with "log-v1" against 39.3 % / 0.586 with "linear";
    basket weave 13.2 % / 0.092 against 13.1 % / 0.101."""


@dataclass
class SourceConfig:
    """The material's BTF data source (see :mod:`neumat.train.sources`)."""

    kind: str = ""
    """"material" (synthetic, by registry name), "maps" (PBR map folder) or "btf" (UBO2014 file)."""
    name: str = ""
    """Material registry name (kind "material")."""
    path: str = ""
    """PBR map folder (kind "maps") or BTF file (kind "btf")."""
    resolution: int = 0
    """Texture resolution in texels per tile side: registry materials are generated at it, PBR map
    folders (kind "maps") resampled to it. 0: the files' own resolution for maps (training
    samples are rendered at the exact maps, so nothing is gained by shrinking them), 256 for
    registry materials."""
    seed: int = 0
    """Seed of a synthetic material's procedural content / direction set (not of the training)."""
    sampling: str = "points"
    """Synthetic sources: "points" (every sample rendered at its own uv and continuous random
    directions, :class:`neumat.data.PointBtf`) or "slices" (a fixed n_views x n_lights grid of
    slice_resolution² images, as measured BTFs). Leather, 3000 steps, on the same 12 held-out
    pairs: slices (shadows in the data) 29.2 % relative L1, points 8.0 %, points without
    shadows (traced by the renderer) 6.3 %."""
    pool_size: int = 4_000_000
    """Point sampling: training samples rendered once (numpy, ~30 s per 4M on one core for a
    256² material) and drawn from at random; 0: fresh samples every batch (~5x slower on CPU)."""
    lod_fraction: float = 0.0
    """Point sampling: fraction of the point phase's training samples that are prefiltered — the
    mean value over a uv box from one U texel to the whole tile
    (:attr:`neumat.data.PointBtfConfig.lod_fraction`) — learnt *jointly* with level 0 through the
    U plane's box mip chain (bundle ``u_filter = "box-mip-trilinear-v1"``). Superseded by
    :attr:`TrainConfig.lod_pyramid`, which a value > 0 here turns off (so runs and checkpoints of
    2026-12-05/06, saved with 0.25, resume as they were trained); kept for ablations:
    the shared decoder pays for it at 1:1 scale. Measured 2026-12-06 (6000 steps, held-out INT8
    relative L1 at the point pairs): 0 — leather 2.80 %, gravel 3.87 %; 0.1 — 4.16 %, 4.49 %;
    0.25 — 4.03 %, 5.08 %; hammered copper of the fidelity suite 8.2 % at 0 against 14.6 % at
    0.25 (2026-12-07)."""
    uv_space: str = "surface"
    """Synthetic sources: "surface" (parallax removed: the triple-plane renderer traces the height
    field itself) or "reference" (parallax baked into the data, as in measured BTFs)."""
    slice_resolution: int = 64
    """Synthetic sources: side in pixels of each rendered (wi, wo) slice."""
    n_views: int = 12
    """Synthetic sources: view directions wo (UBO2014 measures 151)."""
    n_lights: int = 12
    """Synthetic sources: light directions wi per view (UBO2014 measures 151)."""
    normal_source: str = "height"
    """Synthetic sources: shading normals of the rendered BTF from the height map's gradient
    ("height") or from the material's normal map ("map"; kind "maps" with a normal map)."""
    height_scale: float = 0.03
    """Kind "maps": displacement of height-map value 1, in UV units (fractions of the tile width;
    0.03 = 3 %, :data:`neumat.data.pbr_io.DEFAULT_HEIGHT_SCALE`). Texture sets rarely state it."""
    normal_convention: str = "auto"
    """Kind "maps": the normal map's green axis: "opengl" (green toward the image top), "directx"
    (toward the bottom) or "auto" (read gl/dx from the file name, else OpenGL)."""
    allow_flat: bool = False
    """Kind "maps": accept a folder without a height map (flat material, no parallax)."""


@dataclass
class TrainConfig:
    """One training run of a triple-plane material."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """Field and decoder sizes."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and learning-rate schedule."""
    qat: QatConfig = field(default_factory=QatConfig)
    """Quantization-aware training phases."""
    data: DataConfig = field(default_factory=DataConfig)
    """Batch sampling and value scaling."""
    source: SourceConfig = field(default_factory=SourceConfig)
    """Which material to train."""
    steps: int = 6000
    """Optimizer steps of the whole run (schedule and QAT phases are fractions of it); fewer when
    ``max_minutes`` rescales the run. The GPU preset ``assets/configs/train_gpu.json`` runs
    20000 steps of 65536."""
    lod_pyramid: float = 0.05
    """Feature LoD by a learned pyramid: the fraction of the run's optimizer steps, at its end,
    that fit free coarse U levels 1..L (initialised from the box mip chain of level 0) on
    prefiltered samples only (box means from one U texel to the tile), through the trilinear
    lookup the renderers use, with level 0, the H/D planes and the quantized decoder frozen
    (NeuMIP-style; :mod:`neumat.material.mips`). The point phase before it is a full point-only
    run of the remaining steps (warm-up, QAT, decay), so every read at a footprint of at most one
    U texel is that run's, bit for bit; the bundle stores the levels (``u_filter =
    "learned-mip-visible-slope-v2"``) and renders with feature LoD by default. The prefiltered
    samples' H/D coordinates are taken in the visible relief frame
    (:mod:`neumat.material.visible_slope`), as the renderers read the levels. 0: point samples
    only (the bundle reads level 0). Point sources (``source.sampling = "points"``, or any source
    with ``lod_target = "network"``), and only with ``source.lod_fraction`` 0. A pyramid step
    costs about a point step on CPU (plus ~1M prefiltered samples rendered once), so the phase
    costs ~5 % of the point steps a time budget allows. Measured on the shipped gravel (receding
    plane vs 4 x 4 supersampling, relief traced, FLIP / relative L1, tiled), v4 relief frame, 6000
    point steps then 316 pyramid steps: 0.113 / 0.164 in the visible frame, 0.141 / 0.200 in the
    mean-slope frame (2026-12-07, before it); no LoD 0.121 / 0.389; the box chain of the same
    level 0 0.216 / 0.383. The v3 gravel before it, mean-slope frame: 300 steps 0.121 / 0.173, 600
    steps 0.120 / 0.172; joint training (``source.lod_fraction`` 0.25) 0.098 / 0.166 but held-out
    INT8 5.1 % against 3.9 % here."""
    lod_lr: float = 3e-3
    """Peak learning rate of the learned pyramid's levels (AdamW, cosine to
    ``optim.min_lr_ratio`` over the phase). Shipped gravel, 600 pyramid steps, receding plane
    vs 4 x 4 supersampling, tiled (FLIP / relative L1): 1e-1 0.155 / 0.225, 3e-2 0.136 / 0.195,
    1e-2 0.124 / 0.179, 3e-3 0.120 / 0.172 (1500 steps at 1e-2: 0.141 / 0.205; fitting the box
    means harder moves the levels away from what the frozen decoder renders well)."""
    lod_target: str = "btf"
    """What the learned pyramid's levels are fitted to: "btf" (rendered box means of the
    material, 2 x 2 stratified taps each, point sources) or "network" (the frozen network's own
    mean over ``lod_taps``² level-0 taps per box — what a supersampled render of the same
    bundle shows — for any source, measured BTFs included). Shipped gravel, 600 pyramid steps
    after the same 6000 point steps, receding plane vs 4 x 4 supersampling (FLIP / relative L1):
    "btf" 0.124 / 0.179 tiled, 0.135 / 0.216 with synthesis; "network" 0.120 / 0.168 and 0.134 /
    0.218, at ~14x the cost per pyramid step on CPU (16 decoder taps per box)."""
    lod_taps: int = 4
    """Taps per side of a box for ``lod_target = "network"``."""
    seed: int = 0
    """Seed of initialization and sampling; same seed + config + process count = same weights."""
    max_minutes: float = 10.0
    """Wall-time budget of this invocation, minutes; 0: none (the default 10 makes the CPU
    defaults fit 2 cores: a 1024²-map material trains in at most 10 minutes). After ``budget_probe_steps`` steps
    the run's total step count is rescaled to what fits (at most ``steps``), so warm-up, QAT
    phases and learning-rate decay all happen within it; a hard stop guards the rest. A budget
    makes the step count depend on the machine's speed (``total_steps`` in the provenance)."""
    budget_probe_steps: int = 20
    """Steps timed before a ``max_minutes`` budget rescales the run (>= 1; earlier if they take
    more than 10 % of the budget)."""
    val_every: int = 500
    """Optimizer steps between quantized validations (and --export writes)."""
    ckpt_every: int = 500
    """Optimizer steps between checkpoints."""
    keep_checkpoints: int = 3
    """Most recent checkpoints kept on disk (older ones are deleted)."""
    log_every: int = 50
    """Optimizer steps between loss records (history, progress bar)."""
    out: str = "runs/material"
    """Run directory: config.json, ckpt_*.pt, history.json, loss.png."""
    export: str = ""
    """Write the INT8 bundle (.nmat) here at every validation, atomically; "" disables."""
    device: str = "auto"
    """"auto" (CUDA if available), "cpu", "cuda" or "cuda:N"; torchrun sets one GPU per process."""
    amp: bool = True
    """float16 autocast + gradient scaling on CUDA during the float/observe phase (never on CPU,
    never while fake-quantizing: INT8 rounding needs float32)."""
    progress: bool = True
    """Show a rich progress bar (main process, terminals only)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values out of range (:func:`validate_config`)."""
        validate_config(self)


SECTIONS = ("model", "optim", "qat", "data", "source")
"""Nested sections of :class:`TrainConfig` (:func:`.config_io.sections` of it)."""


MAX_BATCH_SIZE = 1 << 20
"""Largest ``data.batch_size``, samples per optimizer step (16x the GPU preset's 65536)."""
MAX_FIXED_SAMPLES = 1 << 22
"""Largest ``data.val_samples`` and ``data.calibration_samples`` (16x the GPU preset's 262144)."""


def validate_config(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` for values out of range (checked once, at the boundary): every
    float finite, planes within a bundle's limits (so the run can be exported), sample counts
    within :data:`MAX_BATCH_SIZE` / :data:`MAX_FIXED_SAMPLES`. Paths are checked when a run
    starts (:mod:`neumat.fileio`), source bounds by :mod:`.sources`."""
    m, o, q, d = cfg.model, cfg.optim, cfg.qat, cfg.data
    infinite = non_finite_fields(cfg)
    plane_bytes = 4 * m.channels * (m.u_res**2 + 2 * m.hd_res**2)
    checks = [
        (not infinite, f"not finite (NaN or infinity): {', '.join(infinite)}"),
        (0 <= m.u_res <= MAX_PLANE_RES and 1 <= m.hd_res <= MAX_PLANE_RES,
         f"model.u_res must be in [0, {MAX_PLANE_RES}] (0: automatic), model.hd_res in [1, {MAX_PLANE_RES}] texels"),
        (1 <= m.channels and 3 * m.channels <= 128, "model.channels must be in [1, 42] (3 * channels <= 128)"),
        (plane_bytes <= MAX_TENSOR_BYTES,
         f"model planes of {plane_bytes} bytes (4 * channels * (u_res² + 2 hd_res²)) exceed a bundle's "
         f"{MAX_TENSOR_BYTES}: lower model.u_res, hd_res or channels"),
        (1 <= m.hidden <= 128, "model.hidden must be in [1, 128] (INT8 MLP width limit)"),
        (m.angle_param in PLANE_PARAMETERIZATIONS,
         f"model.angle_param must be one of {', '.join(PLANE_PARAMETERIZATIONS)}"),
        (m.plane_init_std >= 0, "model.plane_init_std must be >= 0"),
        (o.lr_planes > 0 and o.lr_mlp > 0 and min(o.weight_decay_planes, o.weight_decay_mlp) >= 0,
         "optim learning rates must be > 0, weight decays >= 0"),
        (all(0 <= b < 1 for b in o.betas) and o.eps > 0,
         f"optim.betas must both be in [0, 1) and optim.eps > 0, got betas {list(o.betas)}, eps {o.eps}"),
        (o.restart_period >= 0 and o.restart_mult >= 1, "optim.restart_period must be >= 0, restart_mult >= 1"),
        (0 <= o.min_lr_ratio <= 1, "optim.min_lr_ratio must be in [0, 1]"),
        (o.warmup_steps >= 0 and o.grad_clip >= 0 and o.angular_smoothness >= 0 and o.relative_l2 >= 0,
         "optim.warmup_steps, grad_clip, angular_smoothness and relative_l2 must be >= 0"),
        (0 < q.quantize_start <= q.finetune_start <= 1, "need 0 < qat.quantize_start <= qat.finetune_start <= 1"),
        (0 < q.observer_momentum <= 1 and q.finetune_lr_scale > 0,
         "qat.observer_momentum must be in (0, 1] and qat.finetune_lr_scale > 0"),
        (1 <= d.batch_size <= MAX_BATCH_SIZE and d.accum_steps >= 1 and d.chunks >= 1,
         f"data.batch_size must be in [1, {MAX_BATCH_SIZE}], data.accum_steps/chunks >= 1"),
        (d.chunks < 1 or d.batch_size % d.chunks == 0, "data.batch_size must be a multiple of data.chunks"),
        (d.accum_steps < 1 or d.chunks % d.accum_steps == 0, "data.chunks must be a multiple of data.accum_steps"),
        (1 <= d.val_samples <= MAX_FIXED_SAMPLES and 1 <= d.calibration_samples <= MAX_FIXED_SAMPLES,
         f"data.val_samples and calibration_samples must be in [1, {MAX_FIXED_SAMPLES}]"),
        (d.value_scale >= 0 and 0 < d.value_quantile <= 1, "data.value_scale >= 0, data.value_quantile in (0, 1]"),
        (d.output_encoding in ENCODINGS, f"data.output_encoding must be one of {', '.join(ENCODINGS)}"),
        (cfg.steps >= 1 and cfg.val_every >= 1 and cfg.ckpt_every >= 1 and cfg.log_every >= 1,
         "steps, val_every, ckpt_every and log_every must be >= 1"),
        (cfg.keep_checkpoints >= 1 and cfg.max_minutes >= 0 and cfg.budget_probe_steps >= 1,
         "keep_checkpoints >= 1, max_minutes >= 0, budget_probe_steps >= 1"),
        (cfg.source.kind in ("", "material", "maps", "btf"), "source.kind must be material, maps or btf"),
        (0 <= cfg.lod_pyramid < 1 and cfg.lod_lr > 0,
         "lod_pyramid must be in [0, 1) (a fraction of the steps), lod_lr > 0"),
        (cfg.lod_target in ("btf", "network") and 1 <= cfg.lod_taps <= 8,
         "lod_target must be btf or network, lod_taps in [1, 8]"),
        (cfg.source.uv_space in ("surface", "reference"), "source.uv_space must be surface or reference"),
        (cfg.source.sampling in ("points", "slices") and cfg.source.pool_size >= 0,
         "source.sampling must be points or slices, source.pool_size >= 0"),
        (min(cfg.source.slice_resolution, cfg.source.n_views, cfg.source.n_lights) >= 1,
         "source.slice_resolution, n_views and n_lights must be >= 1"),
    ]
    bad = [msg for ok, msg in checks if not ok]
    if bad:
        raise ConfigError("invalid config: " + "; ".join(bad))
