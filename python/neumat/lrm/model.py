"""The LRM network (VideoNeuMat seed §4.3): 17 frames of a gonioreflectometer video → the NeuMIP
feature textures T_off and T_rgb of the material, in one forward pass.

::

    frames [B, 3, 17, S, S] in [-1, 1] (sRGB-encoded, as Wan's VAE takes them)
      └─ frozen VAE encoder (posterior mean, normalised)      → latents [B, 16, 5, S/8, S/8]
      └─ Wan DiT (timestep 0, learned stand-in text tokens)   → tokens  [B, 16, 5, S/8, S/8]
      └─ first latent frame, un-normalised → post-quant conv + VAE decoder, new conv_out
                                                              → [B, 2C, 1, S, S]
      └─ rows flipped (image row 0 = v max → texture row 0 = v 0), resampled to the texture
         side R (area average when shrinking, bilinear when growing) → T_off, T_rgb [B, R, R, C]

Conventions: frame 0 of the video is the overhead view whose field of view is exactly the
sample (:mod:`neumat.video.trajectory`), so image column c sees u = (c + 1/2) / S and image row r
sees v = 1 - (r + 1/2) / S: after the row flip, the upsampler's pixel grid *is* the texture's
texel grid (``[row = v, col = u, channel]``, the bundle layout of :mod:`neumat.models.neumip`).
Latents are normalised with the VAE's ``latents_mean`` / ``latents_std`` (as Wan's pipelines,
:func:`neumat.video.wan_objective.vae_latents`); the DiT's output is un-normalised with the same
statistics before the decoder, so a pretrained decoder sees latents at its own scale.

Trained: the DiT, the stand-in text tokens, the VAE's post-quant conv and decoder. Frozen: the
VAE encoder and quant conv (``requires_grad`` off, eval mode). Initialised afresh even with
pretrained Wan weights (the "heads", seed §4.3): the DiT's ``proj_out`` (PyTorch's default) and
the decoder's ``conv_out`` (2C instead of 3 output channels), zeroed with ``cfg.residual``: the
textures then start flat — the head's bias, one mean texel per texture (0 at start) that
training fits to the training materials — and the head learns the spatial residual over that
mean texture, so an untrained LRM *is* the mean-texture baseline of :mod:`.evaluate` and
training can only be judged on what it adds. ``bf16`` precision autocasts the DiT and the decoder; the textures come out
float32.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from .config import LrmModelConfig

TRAINABLE_PREFIXES = ("dit.", "text_tokens", "vae.post_quant_conv.", "vae.decoder.")
"""Parameter-name prefixes of the trained parts (the rest, the VAE encoder, is frozen)."""
HEAD_PREFIXES = ("dit.proj_out.", "vae.decoder.conv_out.")
"""Parameter-name prefixes of the heads initialised afresh (module docstring)."""


def input_indices(video_frames: int, frames: int) -> list[int]:
    """Indices of ``frames`` uniformly spaced frames of a ``video_frames`` video, first and last
    included (81 → 17: 0, 5, 10, …, 80)."""
    if not 1 <= frames <= video_frames:
        raise ValueError(f"cannot take {frames} frames of a {video_frames}-frame video")
    if frames == 1:
        return [0]
    return [round(k * (video_frames - 1) / (frames - 1)) for k in range(frames)]


def frames_to_tensor(frames) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` sRGB frames (numpy) → float32 ``[3, T, H, W]`` in [-1, 1]."""
    video = torch.from_numpy(frames).permute(3, 0, 1, 2).float()
    return video / 127.5 - 1.0


class LrmNetwork(nn.Module):
    """Frames → (T_off, T_rgb) (module docstring).

    Args:
        cfg: the network's sizes. Build under ``torch.device("meta")`` to count parameters
            without allocating them.
    """

    def __init__(self, cfg: LrmModelConfig) -> None:
        super().__init__()
        from diffusers import AutoencoderKLWan, WanTransformer3DModel
        from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

        cfg.validate()
        self.cfg = cfg
        self.dit = WanTransformer3DModel(**cfg.dit_kwargs())
        self.vae = AutoencoderKLWan(**cfg.vae_kwargs())
        width = self.vae.decoder.conv_out.in_channels
        self.vae.decoder.conv_out = WanCausalConv3d(width, 2 * cfg.channels, 3, padding=1)
        if cfg.residual:
            self.zero_texture_head()
        self.text_tokens = nn.Parameter(torch.zeros(1, cfg.text_tokens, cfg.dit_text_dim))
        self.freeze_encoder()
        self.register_buffer("latents_mean", torch.tensor(self.vae.config.latents_mean).view(1, -1, 1, 1, 1),
                             persistent=False)
        self.register_buffer("latents_std", torch.tensor(self.vae.config.latents_std).view(1, -1, 1, 1, 1),
                             persistent=False)

    def freeze_encoder(self) -> None:
        """The VAE encoder and quant conv: no gradients, eval mode (kept by :meth:`train`)."""
        for part in (self.vae.encoder, self.vae.quant_conv):
            part.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> LrmNetwork:
        super().train(mode)
        self.vae.encoder.eval()
        self.vae.quant_conv.eval()
        return self

    def reset_heads(self) -> None:
        """Re-draw the heads (:data:`HEAD_PREFIXES`) with PyTorch's default initialisation (after
        loading pretrained Wan weights, whose heads do not fit the task); with ``cfg.residual`` the
        texture head then starts at zero (module docstring)."""
        self.dit.proj_out.reset_parameters()
        self.vae.decoder.conv_out.reset_parameters()
        if self.cfg.residual:
            self.zero_texture_head()

    def zero_texture_head(self) -> None:
        """Zero the texture head's weights and bias: the network's textures are then flat, the
        bias (module docstring)."""
        nn.init.zeros_(self.vae.decoder.conv_out.weight)
        nn.init.zeros_(self.vae.decoder.conv_out.bias)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Every parameter that trains (module docstring), in registration order."""
        return [p for n, p in self.named_parameters() if n.startswith(TRAINABLE_PREFIXES)]

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Normalised VAE latents ``[B, 16, (F-1)/4 + 1, S/8, S/8]`` float32 of frames
        ``[B, 3, F, S, S]`` in [-1, 1] (the frozen encoder's posterior mean)."""
        from ..video.wan_objective import vae_latents

        return vae_latents(SimpleNamespace(vae=self.vae), frames)

    def _autocast(self, device: torch.device):
        enabled = self.cfg.precision == "bf16"
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)

    def forward(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(T_off, T_rgb), float32 ``[B, R, R, C]`` each, of normalised latents ``[B, 16, f, h, w]``
        (module docstring; differentiable in every trained parameter)."""
        b = latents.shape[0]
        with self._autocast(latents.device):
            text = self.text_tokens.expand(b, -1, -1)
            timestep = torch.zeros(b, device=latents.device)
            tokens = self.dit(hidden_states=latents, timestep=timestep, encoder_hidden_states=text,
                              return_dict=False)[0]
            first = tokens[:, :, :1].float() * self.latents_std + self.latents_mean
            image = self.vae.decoder(self.vae.post_quant_conv(first))[:, :, 0]
        image = image.float().flip(-2)
        res = self.cfg.texture_resolution
        if image.shape[-1] != res:
            shrink = res < image.shape[-1]
            image = torch.nn.functional.interpolate(image, size=(res, res), mode="area" if shrink else "bilinear",
                                                    align_corners=None if shrink else False)
        c = self.cfg.channels
        textures = image.permute(0, 2, 3, 1)
        return textures[..., :c].contiguous(), textures[..., c:].contiguous()

    def textures(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` of :meth:`encode`: frames ``[B, 3, F, S, S]`` in [-1, 1] → (T_off, T_rgb)."""
        return self(self.encode(frames))


def parameter_counts(cfg: LrmModelConfig) -> dict[str, int]:
    """Parameters of the network of ``cfg``, built on the meta device (nothing allocated):
    ``{"dit", "vae_encoder", "upsampler", "text_tokens", "total", "trainable"}``."""
    with torch.device("meta"):
        net = LrmNetwork(cfg)
    count = {"dit": net.dit, "vae_encoder": nn.ModuleList([net.vae.encoder, net.vae.quant_conv]),
             "upsampler": nn.ModuleList([net.vae.post_quant_conv, net.vae.decoder])}
    out = {k: sum(p.numel() for p in m.parameters()) for k, m in count.items()}
    out["text_tokens"] = net.text_tokens.numel()
    out["total"] = sum(p.numel() for p in net.parameters())
    out["trainable"] = sum(p.numel() for p in net.trainable_parameters())
    return out
