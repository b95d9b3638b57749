"""Live training progress: a rich progress bar with the loss and samples/s (main process only)."""

from __future__ import annotations

import sys
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    """Progress bar over optimizer steps; a no-op when disabled or not on a terminal.

    Args:
        total: optimizer steps of the run.
        start: steps already done (a resumed run).
        enabled: show the bar (False on non-main processes and with ``progress = false``).
    """

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._last_time, self._last_samples, self.samples = time.perf_counter(), 0, 0
        self.rate = 0.0
        if not self.enabled:
            return
        self._bar = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} samples/s"),
            TextColumn("{task.fields[val]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._bar.add_task("train", total=total, completed=start, loss="-", rate="-", val="")
        self._bar.start()

    def advance(self, samples: int) -> None:
        """One optimizer step of ``samples`` global samples done."""
        self.samples += samples
        if self.enabled:
            self._bar.advance(self._task)

    def set_total(self, total: int) -> None:
        """The run was rescaled (a time budget) to ``total`` steps."""
        if self.enabled:
            self._bar.update(self._task, total=total)

    def update_loss(self, loss: float) -> float:
        """Show ``loss``; returns the samples/s since the previous call."""
        now = time.perf_counter()
        dt = max(now - self._last_time, 1e-9)
        self.rate = (self.samples - self._last_samples) / dt
        self._last_time, self._last_samples = now, self.samples
        if self.enabled:
            self._bar.update(self._task, loss=f"{loss:.5f}", rate=f"{self.rate:,.0f}")
        return self.rate

    def update_validation(self, text: str) -> None:
        """Show the latest validation summary."""
        if self.enabled:
            self._bar.update(self._task, val=text)

    def close(self) -> None:
        """Stop drawing."""
        if self.enabled:
            self._bar.stop()
