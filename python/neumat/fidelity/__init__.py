"""The fidelity suite (``neumat fidelity``): how close a material trained from a user's own PBR
maps renders to ground truth at held-out light/view pairs.

Modules: :mod:`.materials` (texture sets with real-world file names), :mod:`.pairs` (the fixed
held-out light/view pairs), :mod:`.reference` (Mitsuba 3 ground truth and the matching
:class:`~neumat.render.renderer.Renderer` view), :mod:`.metrics`, :mod:`.report` (JSON,
markdown, contact sheet) and :mod:`.run` (the whole benchmark).
"""
