"""Django's PostgreSQL backend, but for the health check of a kept connection.

With CONN_HEALTH_CHECKS Django runs `SELECT 1` before the first query of every request on a connection kept from an
earlier one: a round trip on every API call, most of which are a statement or two (0.1-0.2 ms of a 1.5 ms search).
A connection the server has ended (PostgreSQL restarted or shut down, its backend terminated, an idle timeout) has
something waiting on its socket: the server's FATAL message and the end of the stream, or an error. An idle healthy
one has nothing: the portal does not LISTEN, and PostgreSQL sends nothing unasked between statements. So a
connection psycopg holds open and healthy, idle outside any transaction, whose socket has nothing to read, is usable
without asking the server; any other (something to read, an error on the socket, a transaction left open, psycopg
marking it broken) gets Django's `SELECT 1`, and is closed and opened afresh when that fails.

What the socket cannot show is a peer gone without a word (a network path dropped with no FIN or RST): the request's
first query then fails like any query on a dead connection (503 `unavailable`), Django closes the connection at the
end of that request (`close_if_unusable_or_obsolete` after an error), and the next request opens a new one.
"""
import select

from django.db.backends.postgresql import base, operations
from psycopg import errors, pq

WAITING = select.POLLIN | select.POLLPRI  # POLLHUP, POLLERR and POLLNVAL are reported whether asked for or not


def socket_quiet(raw):
    """Nothing to read and no error on psycopg connection `raw`'s socket, asked without waiting."""
    poller = select.poll()
    poller.register(raw.pgconn.socket, WAITING)
    return not poller.poll(0)


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        """A statement run by a server-side binding cursor (portal/prepared_statements.py), for the query log: its text
        with its parameters written in, as Django writes it for a connection binding server-side (psycopg keeps no
        text of a prepared statement's execution)."""
        if isinstance(cursor, base.ServerBindingCursor):
            try:
                return self.compose_sql(sql, params)
            except errors.DataError:
                return None
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def is_usable(self):
        raw = self.connection
        if raw is None:
            return False
        if (not raw.closed and not raw.broken and raw.pgconn.status == pq.ConnStatus.OK
                and raw.info.transaction_status == pq.TransactionStatus.IDLE and socket_quiet(raw)):
            return True
        return super().is_usable()
