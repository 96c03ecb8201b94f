"""A small least-recently-used cache that the app's sessions share from their threads: the layouts, the
structures and the model views of recent edits are each derived once and then read by every caller (read-only)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

Value = TypeVar("Value")


class LruCache(Generic[Value]):
    """At most `size` values by key; the least recently used one goes first. `make` runs outside the lock, so two
    threads may both make a missing value once; the first one stored is kept and returned to both."""

    def __init__(self, size: int):
        self.size = size
        self._values: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], Value]) -> Value:
        """Returns the value of `key`, made by `make()` and stored on first use."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = make()
        with self._lock:
            value = self._values.setdefault(key, value)
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value

    def clear(self) -> None:
        """Empties the cache (for benchmarks that time the uncached path)."""
        with self._lock:
            self._values.clear()
