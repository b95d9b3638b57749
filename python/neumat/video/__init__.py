"""Video → material, part 1: the "virtual gonioreflectometer" of the VideoNeuMat seed.

* :mod:`.trajectory` — the posed camera/light trajectories (two-phase video, LRM cross set),
  their JSON pose files and the pinhole camera model of a pose;
* :mod:`.folder` — the on-disk layout of one posed video (frames, poses, caption, maps, marker);
* :mod:`.captions` — captions from material metadata (prompt templates, lighting filter);
* :mod:`.dataset` — Mitsuba 3 renders of materials along the trajectories, on Ray;
* :mod:`.metrics` — RPC, Residual Parallax Coherence, of a posed video.

Only numpy is imported here; Mitsuba, Ray, OpenCV, OpenEXR and the diffusers stack (the
``video`` extra: ``pip install -e ".[video]"``) are imported by the functions that need them.
"""
