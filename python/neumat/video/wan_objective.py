"""Wan2.1's training objective: rectified-flow matching on VAE latents, with the conditioning
the pipelines use at inference (so training and generation see the same inputs).

For clean latents x0 (the frozen VAE's mean, normalised with the VAE's ``latents_mean`` /
``latents_std`` exactly as the pipeline un-normalises before decoding), Gaussian noise n and
a noise level sigma in (0, 1]::

    x_sigma = (1 - sigma) x0 + sigma n          (the path FlowMatchEulerDiscreteScheduler integrates)
    target  = n - x0                            (the velocity the DiT predicts)
    loss    = mean((DiT(x_sigma, 1000 sigma, text[, image]) - target)^2)

sigma is drawn uniformly from the 1000 training levels of ``FlowMatchEulerDiscreteScheduler``
with the base model's shift (sigma' = s sigma / (1 + (s - 1) sigma), Wan2.1: s = 3), unweighted,
as DiffSynth-Studio trains Wan. Every random draw of a sample (caption style, caption dropout,
sigma, noise) comes from a generator keyed by (seed, global sample index): a run split by a
resume, or spread over processes, draws exactly the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

NUM_TRAIN_TIMESTEPS = 1000
"""Discrete noise levels of the base models' training schedule."""


def sample_generator(seed: int, *key: int) -> torch.Generator:
    """A CPU torch generator seeded from (``seed``, ``*key``) through numpy's SeedSequence
    (independent streams for distinct keys)."""
    state = np.random.SeedSequence([seed, *key]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def clip_index(seed: int, sample: int, num_clips: int) -> int:
    """Clip trained by global sample ``sample``: epochs walk a fresh seeded permutation."""
    epoch, pos = divmod(sample, num_clips)
    order = torch.randperm(num_clips, generator=sample_generator(seed, 1, epoch))
    return int(order[pos])


def training_sigmas(shift: float) -> torch.Tensor:
    """The 1000 shifted noise levels sigma of ``FlowMatchEulerDiscreteScheduler(shift=shift)``:
    float32 [1000], from 1 (pure noise) down to shift·0.001 / (1 + (shift-1)·0.001)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=shift)
    return scheduler.sigmas.float().clone()


@dataclass(frozen=True)
class SampleDraws:
    """The random choices of one training sample."""

    caption_key: str
    """Caption style trained on (``material_only`` or ``filtered``)."""
    drop_caption: bool
    """True: train on the empty caption (classifier-free guidance dropout)."""
    sigma_index: int
    """Index into :func:`training_sigmas`."""
    generator: torch.Generator
    """The sample's generator, positioned after the draws above (the noise comes next)."""


def draw_sample(seed: int, sample: int, caption_style: str, dropout: float) -> SampleDraws:
    """The choices of global sample ``sample``, in a fixed order from its own stream."""
    gen = sample_generator(seed, 0, sample)
    u_style, u_drop = torch.rand(2, generator=gen).tolist()
    sigma_index = int(torch.randint(0, NUM_TRAIN_TIMESTEPS, (1,), generator=gen))
    if caption_style == "mix":
        key = "material_only" if u_style < 0.5 else "filtered"
    else:
        key = caption_style
    return SampleDraws(key, u_drop < dropout, sigma_index, gen)


def vae_latents(pipe, video: torch.Tensor) -> torch.Tensor:
    """Normalised clean latents of ``video`` [B, 3, F, H, W] in [-1, 1] through the frozen VAE
    (its posterior mean): [B, 16, (F-1)/4+1, H/8, W/8], float32."""
    vae = pipe.vae
    z = vae.encode(video.to(vae.device, vae.dtype)).latent_dist.mode().float()
    mean = torch.tensor(vae.config.latents_mean, device=z.device).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=z.device).view(1, -1, 1, 1, 1)
    return (z - mean) * (1.0 / std)


def text_embeddings(pipe, captions: list[str], max_tokens: int, device) -> torch.Tensor:
    """UMT5 embeddings of ``captions`` [B, max_tokens, D] as the pipeline computes them
    (cleaned text, padding positions zeroed), float32."""
    embeds, _ = pipe.encode_prompt(captions, do_classifier_free_guidance=False,
                                   max_sequence_length=max_tokens, device=device)
    return embeds.float()


def image_condition(pipe, images: list, num_frames: int, height: int, width: int, device):
    """Image-to-video conditioning as ``WanImageToVideoPipeline`` builds it.

    Args:
        images: PIL images, one per sample.
    Returns:
        (condition [B, 4 + 16, f, h, w] float32: the first-frame mask and the latents of the image
        followed by black frames; CLIP image embeddings [B, tokens, D] float32).
    """
    conds, embeds = [], []
    for image in images:
        pixels = pipe.video_processor.preprocess(image, height=height, width=width).to(device, torch.float32)
        f = (num_frames - 1) // pipe.vae_scale_factor_temporal + 1
        shape = (1, pipe.vae.config.z_dim, f, height // pipe.vae_scale_factor_spatial, width // pipe.vae_scale_factor_spatial)
        _, cond = pipe.prepare_latents(pixels, 1, pipe.vae.config.z_dim, height, width, num_frames, torch.float32,
                                       device, None, torch.zeros(shape, device=device))
        conds.append(cond.float())
        embeds.append(pipe.encode_image(image, device).float())
    return torch.cat(conds), torch.cat(embeds)


def flow_matching_loss(transformer, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor,
                       text: torch.Tensor, condition: torch.Tensor | None = None,
                       image_embeds: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared velocity error of the DiT at noise level ``sigma`` (module docstring).

    Args:
        transformer: the (possibly wrapped) ``WanTransformer3DModel``.
        x0, noise: [B, 16, f, h, w] float32.
        sigma: [B] float32 noise levels in (0, 1].
        text: [B, L, D] text embeddings.
        condition: image-to-video only, [B, 20, f, h, w] (concatenated to the channels).
        image_embeds: image-to-video only, [B, tokens, D_img].
    Returns:
        scalar float32 loss.
    """
    s = sigma.view(-1, 1, 1, 1, 1)
    noisy = (1.0 - s) * x0 + s * noise
    inputs = noisy if condition is None else torch.cat([noisy, condition], dim=1)
    dtype = next(p for p in transformer.parameters()).dtype
    pred = transformer(hidden_states=inputs.to(dtype), timestep=sigma * NUM_TRAIN_TIMESTEPS,
                       encoder_hidden_states=text.to(dtype),
                       encoder_hidden_states_image=None if image_embeds is None else image_embeds.to(dtype),
                       return_dict=False)[0]
    return torch.nn.functional.mse_loss(pred.float(), (noise - x0).float())
