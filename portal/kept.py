"""A bounded store a process's threads share: what a hot path read or compiled once and keeps for the next request.

Each user of it decides what makes a kept value still right (a key that names the definition it was compiled from,
or a statement that checks the row is unchanged); this only bounds how much is kept, dropping the least recently
used first, and keeps the map consistent under threads.
"""
import threading
from collections import OrderedDict


class KeptValues:
    """At most `size` values by key, the least recently used dropped first. None is not a value: `get` answers None
    for a key it does not keep."""

    def __init__(self, size):
        self.size = size
        self._values = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, key, value):
        self.put_many([(key, value)])

    def put_many(self, pairs):
        with self._lock:
            for key, value in pairs:
                self._values[key] = value
                self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)

    def drop(self, key):
        with self._lock:
            self._values.pop(key, None)

    def clear(self):
        with self._lock:
            self._values.clear()

    def __len__(self):
        return len(self._values)
