"""portal/gunicorn_worker.py: a pool thread answers a keep-alive connection's next requests itself while they come at
once and the worker has a thread for every connection; otherwise the connection goes back to gthread's poller.

The worker's `handle` runs here in the test's thread, as a pool thread runs it, on a real TCP connection with
gunicorn's own parser and response writer; the client is a thread of the test."""
import os
import socket
import threading

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import TConn

from portal import gunicorn_worker
from portal.gunicorn_worker import PortalThreadWorker

ONE_REQUEST = b"GET /n HTTP/1.1\r\nHost: t\r\n\r\n"


def count_app(environ, start_response):
    body = environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def worker():
    config = Config()
    config.set("threads", 4)
    config.set("keepalive", 5)
    made = PortalThreadWorker(0, os.getpid(), [], None, 30, config, Logger(config))
    made.wsgi, made.nr_conns = count_app, 1
    yield made
    made.tmp.close()


@pytest.fixture
def connection():
    """(the server side as gthread's TConn, the client's socket)"""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        served, address = listener.accept()
        conn = TConn(Config(), served, address, listener.getsockname())
    yield conn, client
    client.close()
    served.close()


def answers(client, count):
    """The bodies of `count` answers read from `client` (each `HTTP/1.1 200 OK ... /n`)."""
    data = b""
    while data.count(b"HTTP/1.1 200 OK") < count or not data.endswith(b"/n"):
        chunk = client.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.count(b"HTTP/1.1 200 OK")


def test_requests_already_sent_are_answered_in_the_same_call(worker, connection, monkeypatch):
    """A pipelining client: the first read takes all three; gthread alone would answer one and queue the rest."""
    monkeypatch.setattr(gunicorn_worker, "LINGER_SECONDS", 0.001)
    conn, client = connection
    client.sendall(ONE_REQUEST * 3)
    assert worker.handle(conn) is True  # kept alive: back to the poller after nothing more came
    assert worker.nr == 3 and answers(client, 3) == 3


def test_a_request_sent_after_the_answer_is_answered_by_the_same_thread(worker, connection, monkeypatch):
    monkeypatch.setattr(gunicorn_worker, "LINGER_SECONDS", 30)  # the client thread's pace does not matter here
    conn, client = connection

    def next_then_close():
        assert answers(client, 1) == 1
        client.sendall(ONE_REQUEST)
        assert answers(client, 1) == 1
        client.shutdown(socket.SHUT_WR)  # the client is done: the connection ends

    follower = threading.Thread(target=next_then_close)
    client.sendall(ONE_REQUEST)
    follower.start()
    assert worker.handle(conn) is False
    follower.join(5)
    assert worker.nr == 2 and not follower.is_alive()


def test_more_connections_than_threads_go_back_to_the_poller_after_each_answer(worker, connection, monkeypatch):
    monkeypatch.setattr(gunicorn_worker, "LINGER_SECONDS", 30)
    worker.nr_conns = worker.cfg.threads + 1  # a thread waiting on one would keep another connection waiting
    conn, client = connection
    client.sendall(ONE_REQUEST * 2)
    assert worker.handle(conn) is True and worker.nr == 1
    assert worker.handle(conn) is True and worker.nr == 2  # (gthread queues it again: the rest is already read)
    assert answers(client, 2) == 2


def test_a_stopping_worker_does_not_wait(worker, connection, monkeypatch):
    monkeypatch.setattr(gunicorn_worker, "LINGER_SECONDS", 30)
    conn, client = connection
    client.sendall(ONE_REQUEST * 2)
    worker.alive = False  # told to stop: answers with Connection: close
    assert worker.handle(conn) is False and worker.nr == 1


def test_a_quiet_connection_goes_back_to_the_poller(worker, connection, monkeypatch):
    monkeypatch.setattr(gunicorn_worker, "LINGER_SECONDS", 0.001)
    conn, client = connection
    client.sendall(ONE_REQUEST)
    assert worker.handle(conn) is True and worker.nr == 1
    assert answers(client, 1) == 1
