"""Stopping a training run cleanly on Ctrl+C or SIGTERM: the signal only sets a flag, which the training loop
reads between steps (a step cut short could leave an optimiser half-applied); the loop then saves what it
can and raises :class:`TrainingInterrupted`. A second signal stops at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType


class TrainingInterrupted(Exception):
    """The run stopped at a signal; ``checkpoint`` holds ``saved`` (what a ``--resume`` goes on from)."""

    def __init__(self, signum: int, checkpoint: Path, saved: str) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.checkpoint = checkpoint
        self.saved = saved


@contextmanager
def stop_requests() -> Iterator[Callable[[], int | None]]:
    """Within it, SIGINT and SIGTERM are remembered instead of ending the process; yields a function that
    gives the first one's number (None while none came). Outside the main thread it changes nothing."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def remember(signum: int, _frame: FrameType | None) -> None:
        if received:  # asked twice: stop now
            raise KeyboardInterrupt
        received.append(signum)

    previous: dict[signal.Signals, object] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, remember)
        yield lambda: received[0] if received else None
    finally:
        for sig, handler in previous.items():  # None: installed outside Python; the default stands in
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)  # type: ignore[arg-type]
