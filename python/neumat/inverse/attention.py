"""Pi3's permutation-equivariant alternating-attention decoder (seed 002 §3.2; Wang et al. 2025,
"π³"): frame-wise self-attention (the tokens of one view) alternating with global
self-attention (the tokens of every view of the scene), with 2D rotary position embeddings of
the patch grid and learned register tokens.

Nothing in it tells one view from another — every view gets the same register tokens and the
same patch positions, and global attention sees the views' tokens as one unordered set — so
permuting the input views permutes the outputs (up to float summation order). There is no
reference view (unlike VGGT's first-frame camera token).

Parameter names follow Pi3's checkpoint (``decoder.<i>.attn.qkv.weight`` there is
``decoder.blocks.<i>.attn.qkv.weight`` here; :mod:`.weights` maps them), so Pi3's pretrained
decoder loads one to one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


def patch_positions(views: int, rows: int, cols: int, registers: int, device: torch.device) -> torch.Tensor:
    """Integer (y, x) positions of every decoder token of ``views`` views: ``registers`` tokens
    at (0, 0), then the ``rows x cols`` patches row-major at (row + 1, col + 1) (Pi3); shape
    ``[views, registers + rows * cols, 2]``, int64."""
    y, x = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij")
    grid = torch.stack([y.reshape(-1), x.reshape(-1)], dim=-1) + 1
    pos = torch.cat([torch.zeros(registers, 2, dtype=grid.dtype, device=device), grid])
    return pos.expand(views, -1, -1)


def rope_2d(t: torch.Tensor, pos: torch.Tensor, freq: float) -> torch.Tensor:
    """2D rotary embedding (RoPE2D of CroCo / DUSt3R / Pi3): the first half of each head's
    channels rotates with the token's row, the second half with its column.

    Args:
        t: ``[N, heads, tokens, d]`` queries or keys (``d`` a multiple of 4).
        pos: ``[N, tokens, 2]`` integer (row, col) positions.
        freq: base frequency (100: ``rope100``).
    Returns:
        ``t`` rotated, same shape and dtype. Within each half (width ``h = d / 2``), channel
        ``j < h/2`` pairs with ``j + h/2`` and turns by ``p / freq^(2j / h)``.
    """
    half = t.shape[-1] // 2
    inv = 1.0 / freq ** (torch.arange(0, half, 2, device=t.device, dtype=torch.float32) / half)
    out = []
    for axis, part in enumerate(t.split(half, dim=-1)):
        ang = pos[..., axis, None].to(torch.float32) * inv  # [N, tokens, half / 2]
        ang = torch.cat([ang, ang], dim=-1)[:, None].to(t.dtype)
        a, b = part.chunk(2, dim=-1)
        out.append(part * ang.cos() + torch.cat([-b, a], dim=-1) * ang.sin())
    return torch.cat(out, dim=-1)


class RopeAttention(nn.Module):
    """Multi-head self-attention with per-head LayerNorm on queries and keys (QK-norm) and 2D
    RoPE (Pi3's ``FlashAttentionRope``); ``[N, tokens, dim] -> [N, tokens, dim]``."""

    def __init__(self, dim: int, heads: int, rope_freq: float) -> None:
        super().__init__()
        self.heads, self.rope_freq = heads, rope_freq
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.LayerNorm(dim // heads)
        self.k_norm = nn.LayerNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        n, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(n, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q = rope_2d(self.q_norm(q).to(v.dtype), pos, self.rope_freq)
        k = rope_2d(self.k_norm(k).to(v.dtype), pos, self.rope_freq)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(n, tokens, dim))


class LayerScale(nn.Module):
    """Per-channel scale of a residual branch (CaiT), parameter ``gamma`` as in DINOv2 / Pi3."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))`` (DINOv2 / Pi3 naming)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class RopeBlock(nn.Module):
    """Pre-norm transformer block (Pi3's ``BlockRope``): ``x + ls1(attn(norm1(x)))``, then
    ``x + ls2(mlp(norm2(x)))``; LayerNorm eps 1e-6."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        dim = cfg.dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = RopeAttention(dim, cfg.heads, cfg.rope_freq)
        self.ls1 = LayerScale(dim, cfg.layer_scale)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        self.ls2 = LayerScale(dim, cfg.layer_scale)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), pos))
        return x + self.ls2(self.mlp(self.norm2(x)))


class AlternatingAttention(nn.Module):
    """The decoder: ``2 * pairs`` :class:`RopeBlock` s, even ones frame-wise, odd ones global.

    Block ``2k`` attends within each view, block ``2k + 1`` across all views of a scene; the
    pair's two outputs, concatenated over channels, are alternating block ``k``'s features
    (width ``2 * dim``) that the DPT heads read (:attr:`ModelConfig.head_layers`).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.registers, self.rope_freq = cfg.registers, cfg.rope_freq
        self.blocks = nn.ModuleList(RopeBlock(cfg) for _ in range(2 * cfg.pairs))
        self.register_token = nn.Parameter(torch.empty(1, 1, cfg.registers, cfg.dim))
        nn.init.normal_(self.register_token, std=1e-6)

    def forward(self, tokens: torch.Tensor, rows: int, cols: int, keep: tuple[int, ...]) -> dict[int, torch.Tensor]:
        """Run the decoder on the patch tokens of ``B`` scenes of ``V`` views each.

        Args:
            tokens: ``[B, V, rows * cols, dim]`` encoder patch tokens, row-major per view.
            rows, cols: the patch grid (image height / 14, width / 14).
            keep: alternating-block indices whose features to return.
        Returns:
            ``{k: [B, V, registers + rows * cols, 2 * dim]}`` for every ``k`` in ``keep``:
            register tokens first, then the patches.
        """
        b, v, p, c = tokens.shape
        x = torch.cat([self.register_token.expand(b, v, -1, -1).to(tokens.dtype), tokens], dim=2)
        n = x.shape[2]
        frame_pos = patch_positions(b * v, rows, cols, self.registers, tokens.device)
        global_pos = frame_pos.reshape(b, v * n, 2)
        out, frame_out = {}, None
        for i, blk in enumerate(self.blocks):
            if i % 2 == 0:
                x = blk(x.reshape(b * v, n, c), frame_pos)
                frame_out = x
            else:
                x = blk(x.reshape(b, v * n, c), global_pos)
                if i // 2 in keep:
                    out[i // 2] = torch.cat([frame_out.reshape(b, v, n, c), x.reshape(b, v, n, c)], dim=-1)
        return out
