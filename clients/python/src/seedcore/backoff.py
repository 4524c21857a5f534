"""Exponential back-off with jitter, for retrying after network errors and 5xx answers."""

from __future__ import annotations

import random


class Backoff:
    """Pauses from `first` doubling to `most` seconds, each spread by up to a quarter either way
    so that workers cut off together do not come back together."""

    def __init__(self, first: float = 0.1, most: float = 5.0) -> None:
        self._first = first
        self._most = most
        self._next = first

    def next(self) -> float:
        """The pause before the next try."""
        pause = self._next
        self._next = min(self._next * 2, self._most)
        return pause * random.uniform(0.75, 1.25)

    def reset(self) -> None:
        """After a success: the next failure waits `first` again."""
        self._next = self._first
