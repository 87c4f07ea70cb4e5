"""gunicorn's gthread worker, answering a keep-alive connection's next request in the thread that answered the last
one when it comes at once and no other connection can be kept waiting for that thread.

gthread passes every request of a keep-alive connection between threads three times: the main thread's poller sees
the connection readable and queues it to the thread pool, a pool thread answers it, and hands the connection back
to the main thread (a byte on a pipe) to be polled again. Each pass is a thread wake-up, and each wake-up waits for
the GIL: about 0.07 ms of a trivial request on two cores, 0.1–0.2 ms of a search page. A client that sends its
next request as soon as it has read an answer (a CI job calling the API in a loop, a proxy's pool of upstream
connections under load, `make bench`) pays it on every call.

Here, after an answer on a connection kept alive, the thread waits up to LINGER_SECONDS for that connection's next
request and answers it itself, for as long as they keep coming. It does so only while the worker holds no more
connections than it has threads, so no connection already held can be queued behind a thread that waits; a new one
accepted meanwhile waits for a thread at most LINGER_SECONDS. Otherwise, or when no request comes in time, the
connection goes back to the poller as gthread does. A worker told to stop stops waiting.

Written against gunicorn 27's ThreadWorker (pyproject.toml pins the major version): `handle(conn)` answers one
request and returns True to keep the connection; `conn.parser.unreader` holds what was read past the last request.
"""
import selectors

from gunicorn.workers.gthread import ThreadWorker

LINGER_SECONDS = 0.001


class PortalThreadWorker(ThreadWorker):
    def handle(self, conn):
        keep = super().handle(conn)
        while keep is True and self.alive and self.nr_conns <= self.cfg.threads and _next_request_comes(conn):
            keep = super().handle(conn)
        return keep


def _next_request_comes(conn):
    """Whether `conn` has its next request already read (a pipelining client) or readable within LINGER_SECONDS.
    Readable also when the client closed: the next `handle` then ends the connection."""
    if conn.parser.unreader.buf.getvalue():
        return True
    with selectors.DefaultSelector() as selector:
        selector.register(conn.sock, selectors.EVENT_READ)
        return bool(selector.select(LINGER_SECONDS))
