"""A lean keep-alive HTTP client and bounded latency/throughput loops.

http.client rather than requests: at a few milliseconds per request the client's own overhead
would show up in the figures (and the client shares the machine's two cores with the server).
"""
import contextlib
import http.client
import json
import math
import threading
import time
from dataclasses import dataclass, field


class HttpError(RuntimeError):
    pass


class Client:
    """One keep-alive connection per thread; reconnects (and retries once) when the server closed it."""

    def __init__(self, host, port, token=None, timeout=60):
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self._local = threading.local()

    def _connection(self, fresh=False):
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, method, path, body=None, headers=None):
        """(status, raw body bytes, seconds) — the time covers sending and reading the whole response.
        `headers` replace the JSON API's (Content-Type, Accept, the bearer token)."""
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        if headers is None:
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt > 0)
            started = time.perf_counter()
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - started
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, data, elapsed
        raise AssertionError("unreachable")

    def json(self, method, path, body=None, expect=(200,)):
        status, data, _ = self.request(method, path, body)
        if status not in expect:
            raise HttpError(f"{method} {path} -> {status}: {data[:500]!r}")
        return json.loads(data)


def percentile(values, pct):
    """Nearest-rank percentile of an unsorted list (seconds in, seconds out)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Sample:
    name: str
    latencies: list = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    wall: float = 0.0
    concurrency: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def count(self):
        return len(self.latencies)

    def ms(self, pct):
        return percentile(self.latencies, pct) * 1000

    @property
    def mean_ms(self):
        return sum(self.latencies) / len(self.latencies) * 1000 if self.latencies else math.nan

    @property
    def rate(self):
        return self.count / self.wall if self.wall else math.nan

    def summary(self):
        return {"requests": self.count, "errors": self.errors, "concurrency": self.concurrency,
                "p50_ms": round(self.ms(50), 2), "p95_ms": round(self.ms(95), 2), "p99_ms": round(self.ms(99), 2),
                "mean_ms": round(self.mean_ms, 2), "req_per_s": round(self.rate, 1), "wall_s": round(self.wall, 2),
                **({"first_error": self.first_error} if self.first_error else {}), **self.extra}


def run_loop(name, call, *, requests, seconds, concurrency=1, warmup=0, meter=None):
    """Call `call(i)` (returns seconds, or raises) up to `requests` times or for `seconds`, whichever ends first,
    from `concurrency` threads. `warmup` calls run first and are not recorded. `meter` (a context manager with
    a `result` dict, e.g. bench_server.CpuMeter) wraps the measured part; its result lands in `extra`."""
    for i in range(warmup):
        try:
            call(-1 - i)
        except Exception:  # noqa: BLE001 - warm-up failures show up again in the measured loop
            pass
    sample = Sample(name, concurrency=concurrency)
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = math.inf

    def worker():
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                elapsed = call(i)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the loop goes on
                with lock:
                    sample.errors += 1
                    sample.first_error = sample.first_error or f"{type(exc).__name__}: {exc}"[:300]
                continue
            with lock:
                sample.latencies.append(elapsed)

    with meter if meter is not None else contextlib.nullcontext():
        started = time.perf_counter()
        deadline = started + seconds
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sample.wall = time.perf_counter() - started
    if meter is not None:
        sample.extra.update(meter.result)
    return sample
