"""How a long grading run shows its progress: counts and an estimated time left.

On a terminal, a tqdm bar stays at the bottom with each graded submission printed above it.
Anywhere else (a log file, CI, a pipe), each submission is one plain line with the same
counts and estimate, so a log can be read, grepped and tailed.
"""

from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    """``done(line)`` after each finished job; the counts and the estimate are added here."""

    def __init__(self, total: int, print_line=print, stream=None):
        self.total, self.count, self._print = total, 0, print_line
        self._t0 = time.monotonic()
        stream = stream if stream is not None else sys.stdout
        self._bar = None
        if print_line is print and stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="nb", dynamic_ncols=True, file=stream, leave=False)

    def done(self, line: str) -> None:
        self.count += 1
        if self._bar is not None:
            self._bar.write(line)
            self._bar.update(1)
            return
        elapsed = time.monotonic() - self._t0
        left = elapsed / self.count * (self.total - self.count)
        eta = f"  ETA {_duration(left)}" if self.count < self.total else ""
        self._print(f"[{self.count}/{self.total}]{line}{eta}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
