"""``neumat view``: an interactive window (glfw + Dear ImGui through imgui-bundle) around the
slangpy :class:`~neumat.render.renderer.Renderer`.

Modules, one concept each:

- :mod:`.state` — everything the user can change (:class:`ViewerState`) and how it maps to a
  ``Renderer.render`` call;
- :mod:`.camera_control` — the orbit / pan / zoom camera and the light's angles;
- :mod:`.reload` — :class:`BundleWatcher`, live reload of a ``.nmat`` file;
- :mod:`.debug_views` — the images of the debug views (AOVs, feature planes, INT8 − FP32);
- :mod:`.frame_times` — per-pass frame-time history for the ImPlot graph;
- :mod:`.gl_image` — GL texture upload, blit into the viewport, framebuffer read-back;
- :mod:`.script` — scripted events (headless mode, tests);
- :mod:`.xvfb` — a private X server for headless runs and tests;
- :mod:`.ui` — the ImGui panels;
- :mod:`.app` — :class:`App`: the window and its frame loop (interactive and headless alike).

The window needs ``pip install -e ".[view]"`` (glfw, imgui-bundle, PyOpenGL); importing
:mod:`neumat.viewer` itself needs none of them.
"""
