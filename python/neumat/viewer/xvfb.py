"""A private X server (Xvfb) for headless viewer runs and tests.

``with XvfbDisplay() as display:`` starts ``Xvfb :N`` on a free display number, waits until its
socket exists, sets ``DISPLAY`` and on exit stops the server and restores ``DISPLAY``.
Install it with ``scripts/ensure_display.sh`` (Debian: ``apt-get install xvfb libgl1-mesa-dri
libgl1 libegl1``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

SOCKET_DIR = Path("/tmp/.X11-unix")


class XvfbError(RuntimeError):
    """Xvfb is missing or did not start; the message says how to fix it."""


def xvfb_binary() -> str | None:
    """Path of the ``Xvfb`` executable, or None."""
    return shutil.which("Xvfb")


def free_display(first: int = 90, last: int = 400) -> int:
    """A display number with neither a lock file nor a socket."""
    for n in range(first, last):
        if not Path(f"/tmp/.X{n}-lock").exists() and not (SOCKET_DIR / f"X{n}").exists():
            return n
    raise XvfbError(f"no free X display number in {first}..{last}")


class XvfbDisplay:
    """Context manager running ``Xvfb :N -screen 0 WxHx24`` (see the module docstring)."""

    def __init__(self, screen: tuple[int, int] = (1280, 1024), timeout_s: float = 10.0) -> None:
        self.screen = screen
        self.timeout_s = timeout_s
        self.process: subprocess.Popen | None = None
        self.display: str | None = None
        self._saved: str | None = None

    def __enter__(self) -> str:
        binary = xvfb_binary()
        if binary is None:
            raise XvfbError("Xvfb not found: run scripts/ensure_display.sh "
                            "(apt-get install -y xvfb libgl1-mesa-dri libgl1 libegl1)")
        for _ in range(5):  # another process may grab the number between the check and the start
            n = free_display()
            proc = subprocess.Popen([binary, f":{n}", "-screen", "0", f"{self.screen[0]}x{self.screen[1]}x24",
                                     "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline and proc.poll() is None and not (SOCKET_DIR / f"X{n}").exists():
                time.sleep(0.05)
            if proc.poll() is None and (SOCKET_DIR / f"X{n}").exists():
                self.process, self.display = proc, f":{n}"
                self._saved = os.environ.get("DISPLAY")
                os.environ["DISPLAY"] = self.display
                return self.display
            proc.kill()
            proc.wait()
        raise XvfbError("Xvfb did not start (5 tries)")

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._saved is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = self._saved
