"""A progress bar that appears only when a run takes longer than a second, on a terminal."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:  # rich.progress (live display, tables, spinners) is imported only when a bar appears
    from rich.progress import Progress, TaskID


class DelayedProgress:
    def __init__(self, console: Console, label: str, *, enabled: bool, delay: float = 1.0) -> None:
        self.console, self.label, self.delay = console, label, delay
        self.enabled = enabled and console.is_terminal
        self.started = time.monotonic()
        self.bar: Progress | None = None
        self.task: TaskID | None = None  # set with the bar

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None or self.task is None:
            if time.monotonic() - self.started < self.delay:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn(self.label),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total)
        self.bar.update(self.task, completed=done, total=total)

    def __enter__(self) -> DelayedProgress:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()
