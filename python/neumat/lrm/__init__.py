"""Video → material, part 2: the large reconstruction model (LRM) of the VideoNeuMat seed (§4.3).

A Wan2.1 DiT over the frozen Wan VAE's latents of 17 uniformly spaced frames of a
gonioreflectometer video; its output tokens of the first latent frame go through a VAE-decoder
upsampler with a new head to the NeuMIP feature textures T_off and T_rgb, which the universal
decoders (trained with it) turn into a ``neumip`` bundle — one forward pass per material, where
direct fitting (:mod:`neumat.video.fit`) optimizes per material.

* :mod:`.config` — the network's sizes (tiny, and the seed's full 1.3B) and the training run;
* :mod:`.model` — the network (frames → latents → DiT → upsampler → textures);
* :mod:`.weights` — pretrained Wan parts from a local folder, the trained LRM's folder;
* :mod:`.data` — the training materials (posed video + cross-joined folders of a data set);
* :mod:`.synthetic` — a small data set rendered by the torch frame renderer (tests, smoke runs);
* :mod:`.render` — frames of predicted textures through :mod:`neumat.video.frame_render`;
* :mod:`.loss`, :mod:`.metrics` — the rendering loss (L2 + perceptual: LPIPS by local file or
  the stated MS-SSIM substitute) and the figures validation and evaluation report;
* :mod:`.train` — the training engine's plug-in (``neumat lrm train``; multi-GPU launch lines);
* :mod:`.inputs`, :mod:`.reconstruct` — video files / frame folders in, a ``.nmat`` out
  (``neumat lrm reconstruct``, ``neumat video2mat``);
* :mod:`.evaluate` — held-out figures against the mean-texture baseline and direct fitting.

Nothing is imported here: torch and the diffusers stack (the ``video`` extra) load with the
modules that need them.
"""
