"""gunicorn's settings for the portal: `gunicorn portal.wsgi -c python:portal.gunicorn_config` (README "Production";
`manage.py demo` and `make bench` run the same). Flags on the command line override these.

Why `reuse_port`: without it every worker accepts from the master's one listening socket, and whichever is awake
first takes the next connection. Keep-alive clients (CI runners, wrk, a proxy's upstream pool) open a few
connections and hold them, so they often all land on one worker: issue 16 saw 8 wrk connections on one worker (0.9
core busy, the other 0.0). With `reuse_port` (gunicorn >= 24) each worker binds its own SO_REUSEPORT socket to the
address and Linux spreads new connections over them by a hash of the client's address and port. The spread is
per connection, not per request: a handful of connections can still hash unevenly, and a busy worker gets its share
of new ones all the same. A worker that exits drops the connections still queued on its socket (clients retry), and
the address stays open to any other process of the same user that sets SO_REUSEPORT: stop old servers before
starting new ones on the same port.
"""
import os

reuse_port = True
# gthread (threads, so a worker waiting on PostgreSQL keeps serving its other connections), answering a keep-alive
# connection's next request in the thread that answered the last when it comes at once (portal/gunicorn_worker.py)
worker_class = "portal.gunicorn_worker.PortalThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = 5  # seconds an idle keep-alive connection is held (gunicorn's default 2 is shorter than most proxies')
timeout = 120
