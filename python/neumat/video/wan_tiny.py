"""Tiny Wan2.1 pipelines built offline: the same diffusers/transformers classes as the real
models (``WanTransformer3DModel``, ``AutoencoderKLWan``, ``UMT5EncoderModel``, a fast tokenizer,
``CLIPVisionModel`` for image-to-video), with a few thousand parameters each, randomly
initialised from a seed and written in the diffusers folder layout that
:func:`neumat.video.wan_parts.load_wan_parts` reads.

They exist so that finetuning and generation run for real on a CPU in seconds (tests, CI, a
smoke run of ``neumat video finetune``); nothing they generate looks like a material. Latent
geometry is the real one: the VAE downsamples 8x in space and 4x in time, so videos have
4k+1 frames and sides that are multiples of 16 (8 x the DiT's 2x2 patch).
"""

from __future__ import annotations

from pathlib import Path

TINY_WORDS = (
    "the video clip features a close up view of material surface with texture rough smooth glossy "
    "matte stone wood metal fabric leather brick tile moss sand rock bark paint rust concrete marble "
    "red green blue brown grey white black dark light fine coarse pattern grooves cracks bumps and"
).split()
"""Vocabulary of the tiny word-level tokenizer (other words map to ``<unk>``)."""
TINY_TEXT_DIM = 32
"""Width of the tiny UMT5 encoder's hidden states (the DiT's ``text_dim``)."""
TINY_IMAGE_DIM = 16
"""Width of the tiny CLIP vision encoder's hidden states (the I2V DiT's ``image_dim``)."""
TINY_IMAGE_SIZE = 32
"""Side of the tiny CLIP encoder's input image, pixels."""


def tiny_tokenizer():
    """A ``PreTrainedTokenizerFast`` over :data:`TINY_WORDS` (whitespace split, lower case),
    padding with ``<pad>`` (id 0) and ending each text with ``</s>`` like UMT5's."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in TINY_WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_wan_components(image_to_video: bool = False, seed: int = 0, layers: int = 2) -> dict:
    """The components of a tiny ``WanPipeline`` (or ``WanImageToVideoPipeline``), keyed as the
    pipeline's constructor names them.

    Args:
        image_to_video: add the CLIP image encoder + processor and build the DiT with 36 input
            channels (16 noisy latent + 4 mask + 16 condition latent) and image cross-attention.
        seed: torch seed of the random initialisation (same seed -> same weights).
        layers: DiT transformer blocks (2 heads x 16 channels each).
    """
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=TINY_TEXT_DIM, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    vae = AutoencoderKLWan(base_dim=16, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    heads, head_dim = 2, 16
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim,
        in_channels=36 if image_to_video else 16, out_channels=16, text_dim=TINY_TEXT_DIM, freq_dim=32,
        ffn_dim=64, num_layers=layers, rope_max_seq_len=64,
        image_dim=TINY_IMAGE_DIM if image_to_video else None,
        added_kv_proj_dim=heads * head_dim if image_to_video else None)
    parts = {"transformer": transformer, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
             "scheduler": FlowMatchEulerDiscreteScheduler(shift=3.0)}
    if image_to_video:
        from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

        parts["image_encoder"] = CLIPVisionModel(CLIPVisionConfig(
            hidden_size=TINY_IMAGE_DIM, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            image_size=TINY_IMAGE_SIZE, patch_size=8))
        parts["image_processor"] = CLIPImageProcessor(
            size={"shortest_edge": TINY_IMAGE_SIZE}, crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE})
    return parts


def write_tiny_wan(path: str | Path, image_to_video: bool = False, seed: int = 0, layers: int = 2) -> Path:
    """Write a tiny Wan pipeline (:func:`tiny_wan_components`) to ``path`` in the diffusers layout
    (``model_index.json``, ``transformer/``, ``vae/``, ``text_encoder/``, ``tokenizer/``,
    ``scheduler/``, and for image-to-video ``image_encoder/`` + ``image_processor/``).

    Returns:
        ``path``.
    """
    from diffusers import WanImageToVideoPipeline, WanPipeline

    cls = WanImageToVideoPipeline if image_to_video else WanPipeline
    pipe = cls(**tiny_wan_components(image_to_video, seed, layers))
    pipe.save_pretrained(str(path))
    return Path(path)
