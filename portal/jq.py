"""Sandboxed, time-bounded jq evaluation of user-authored expressions (calculations, templates).

libjq holds the GIL and cannot be interrupted, snapshots os.environ into $ENV when compiling and
abort()s the whole process when out of memory, so expressions only run in a pool of long-lived
worker subprocesses (empty environment, rlimits) fed batches over pipes; a caller that times out
kills its worker.  $ENV/env, input*, debug/stderr, halt*, $__loc__ and modules are compile errors.
An expression in the small subset portal/jq_fast.py knows (paths, literals, `+`, comparisons, `//`, conditionals)
is evaluated in the process instead, for each input it answers exactly as jq; the rest of the inputs come here.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import math
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

from portal import jq_fast

__all__ = [
    "JqError",
    "JqCompileError",
    "JqTimeout",
    "jq_compile_check",
    "jq_first",
    "jq_all",
    "jq_first_many",
    "jq_first_here",
    "Undecided",
]


class JqError(Exception):
    """A jq expression could not be evaluated; ``str(exc)`` is a human-readable message."""

    def __init__(self, message: str, *, expression: str | None = None):
        super().__init__(message)
        self.message = message
        self.expression = expression


class JqCompileError(JqError):
    """The expression does not compile, or uses a builtin that is not available here."""


class JqTimeout(JqError):
    """The evaluation did not finish within its time limit (its worker was killed)."""


# --------------------------------------------------------------------------- configuration

DEFAULT_TIMEOUT_SECONDS = 1.0
DEFAULT_MEMORY_LIMIT_MB = 512  # RLIMIT_AS of each worker; Django setting JQ_MEMORY_LIMIT_MB
DEFAULT_MAX_WORKERS = max(2, min(8, os.cpu_count() or 2))  # setting JQ_MAX_WORKERS
MAX_OUTPUT_BYTES = 16 * 1024 * 1024  # per input; larger results become a per-input JqError
_SPAWN_TIMEOUT = 15.0  # worker start-up (python + import jq) is bounded separately
_ALARM_GRACE = 5.0  # worker self-destructs (SIGALRM) this long after its caller's deadline
_MAX_CRASHES_PER_CALL = 3
_WORKER_COMPILE_CACHE = 512  # compiled programs kept per worker (~30 KB each)


def _setting(name: str, default):
    """Read a Django setting lazily; Django is optional and need not be configured."""
    try:
        from django.conf import settings
    except Exception:  # Django not installed
        return default
    try:
        if not settings.configured:
            return default
        return getattr(settings, name, default)
    except Exception:
        return default


def _resolve_timeout(timeout) -> float:
    if timeout is None:
        timeout = _setting("JQ_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        raise ValueError(f"jq timeout must be a number of seconds, not {timeout!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"jq timeout must be a positive finite number of seconds, not {timeout!r}")
    return value


# --------------------------------------------------------------------------- static checks

# Builtins that read jq's input stream, write to stderr, stop the jq process, or look at the
# environment / module filesystem.  In the worker they are shadowed by definitions that
# reference an undefined marker function: jq only resolves the body of a definition that is
# actually used, so using one of them is a *compile* error (which we rewrite to say why),
# while programs that do not use them - or define their own function of that name - compile
# normally.  Lexical scoping means user code cannot reach the original builtin.
_UNAVAILABLE_BUILTINS: dict[str, tuple[tuple[int, ...], str]] = {
    "input": ((0,), "it reads jq's input stream"),
    "inputs": ((0,), "it reads jq's input stream"),
    "input_filename": ((0,), "it reads jq's input stream"),
    "input_line_number": ((0,), "it reads jq's input stream"),
    "debug": ((0, 1), "it writes to stderr"),
    "stderr": ((0,), "it writes to stderr"),
    "halt": ((0,), "it stops the jq process"),
    "halt_error": ((0, 1), "it stops the jq process"),
    "env": ((0,), "expressions cannot read the server environment"),
    "modulemeta": ((0,), "jq modules are not available"),
    "get_search_list": ((0,), "jq modules are not available"),
    "get_prog_origin": ((0,), "jq modules are not available"),
    "get_jq_origin": ((0,), "jq modules are not available"),
}
_MARKER = "__portal_jq_unavailable__"
_MARKER_RE = re.compile(_MARKER + r"([A-Za-z_][A-Za-z0-9_]*)")


def _build_prelude() -> str:
    parts = []
    for name, (arities, _reason) in _UNAVAILABLE_BUILTINS.items():
        for arity in arities:
            params = "(" + "; ".join(f"_a{k}" for k in range(arity)) + ")" if arity else ""
            parts.append(f"def {name}{params}: {_MARKER}{name};")
    # The worker's environment is empty anyway; this makes $ENV {} even if the scanner below
    # were fooled.  The prelude is one line with no open brackets, so `prelude + expr` parses
    # exactly like `expr` (which the worker also compiles on its own first).
    parts.append("{} as $ENV | ")
    return " ".join(parts)


_PRELUDE = _build_prelude()

# $variables that leak process/program details.  $__prog_args/$__prog_name are not defined by
# the jq bundled today, but are refused in case a future libjq defines them.
_UNAVAILABLE_VARIABLES = {
    "ENV": "expressions cannot read the server environment",
    "__loc__": "it exposes evaluator internals",
    "__prog_args": "it exposes evaluator internals",
    "__prog_name": "it exposes evaluator internals",
}
_IDENT_RE = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _code_tokens(text: str):
    """Yield ``(kind, name, start, end)`` for ``$bindings`` ('var') and identifiers ('ident')
    that jq's lexer sees as code, i.e. outside string literals (but inside ``\\(...)``
    interpolations) and outside ``#`` comments (jq 1.7.1+ rules: a backslash escapes the next
    character - or a CRLF pair - so an odd backslash before the newline continues a comment).
    """
    i, n = 0, len(text)
    depth = 0  # open ( [ { plus open interpolations
    resume: list[int] = []  # depth at which each open interpolation returns to its string
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            if c == "\\":
                if text.startswith("(", i + 1):
                    resume.append(depth)
                    depth += 1
                    in_string = False
                i += 2
            elif c == '"':
                in_string = False
                i += 1
            else:
                i += 1
            continue
        if c == '"':
            in_string = True
            i += 1
        elif c == "#":
            i += 1
            while i < n and text[i] != "\n":
                if text[i] == "\\":
                    i += 3 if text.startswith("\r\n", i + 1) else 2
                else:
                    i += 1
            i += 1
        elif c in "([{":
            depth += 1
            i += 1
        elif c in ")]}":
            depth -= 1
            if c == ")" and resume and depth == resume[-1]:
                resume.pop()
                in_string = True
            i += 1
        elif c == "$":
            m = _IDENT_RE.match(text, i + 1)
            if m:
                yield ("var", m.group(), i, m.end())
                i = m.end()
            else:
                i += 1
        elif c == "." or c.isdigit():
            m = _NUMBER_RE.match(text, i)
            if m:  # keep `1e5` from looking like the identifier `e5`
                i = m.end()
            elif c == "." and _IDENT_RE.match(text, i + 1):  # .field
                i = _IDENT_RE.match(text, i + 1).end()
            else:
                i += 1
        elif c == "@":  # @format
            m = _IDENT_RE.match(text, i + 1)
            i = m.end() if m else i + 1
        else:
            m = _IDENT_RE.match(text, i)
            if m:
                yield ("ident", m.group(), i, m.end())
                i = m.end()
            else:
                i += 1


@functools.lru_cache(maxsize=4096)
def _static_problem(expression: str) -> str | None:
    """Problems found without compiling (cheap, cached): reasons jq must not even see it."""
    if "\x00" in expression:
        return "jq: error: the expression contains a NUL character"
    for kind, name, _start, end in _code_tokens(expression):
        if kind == "var" and name in _UNAVAILABLE_VARIABLES:
            return f"jq: error: ${name} is not available in this jq sandbox ({_UNAVAILABLE_VARIABLES[name]})"
        if kind == "ident" and name in ("import", "include"):
            rest = expression[end:].lstrip()
            if not rest.startswith(":"):  # `{import: 1}` is just an object key
                return f"jq: error: `{name}` is not available in this jq sandbox (jq modules are not supported)"
    return None


def _check_expression_type(expression) -> None:
    if not isinstance(expression, str):
        raise JqCompileError(
            f"jq: error: the expression must be a string, not {type(expression).__name__}",
            expression=None,
        )


def _raise_static_problem(expression: str) -> None:
    _check_expression_type(expression)
    problem = _static_problem(expression)
    if problem:
        raise JqCompileError(problem, expression=expression)


def _compile_message(message: str) -> str:
    m = _MARKER_RE.search(message)
    if m and m.group(1) in _UNAVAILABLE_BUILTINS:
        name = m.group(1)
        return f"jq: error: `{name}` is not available in this jq sandbox ({_UNAVAILABLE_BUILTINS[name][1]})"
    return message.strip() or "jq: error: the expression does not compile"


# --------------------------------------------------------------------------- worker process

# Runs as `python -I -S -c SOURCE JQ_DIR PRELUDE MEM_BYTES MAX_OUTPUT CACHE_SIZE`, empty env,
# cwd "/".  Protocol (all lines end in \n, JSON is ASCII-only):
#   request:  JSON header [op, expression, n, alarm_seconds, sync]  then n lines of input JSON
#             op: "c" compile only, "f" first output, "a" all outputs
#   response: "c" + JSON message  (compile error; nothing else follows)
#          |  "k" then n lines, one per input: "o" + JSON result | "n" (no output) | "e" + JSON message
#   sync=1 flushes after every input (used to pin a crash on one input).
# At start-up it prints "r" (ready) or "x" + JSON message.
_WORKER_SOURCE = r'''
import sys, os, json, signal
out = sys.stdout.buffer
try:
    sys.path.insert(0, sys.argv[1])
    PRELUDE = sys.argv[2]
    MEM = int(sys.argv[3])
    MAX_OUT = int(sys.argv[4])
    CACHE_SIZE = int(sys.argv[5])
    import collections, resource, jq
    os.environ.clear()  # unsetenv() everything (PEP 538 may have set LC_CTYPE); $ENV is read from environ
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # die with the parent (stdin EOF), not with ^C
    signal.signal(signal.SIGALRM, signal.SIG_DFL)  # backstop: alarm kills us even inside libjq
    def limit(res, value):
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass
    limit(resource.RLIMIT_CORE, 0)
    limit(resource.RLIMIT_FSIZE, 0)
    limit(resource.RLIMIT_NOFILE, 3)  # stdin/stdout/stderr are all we need: no open()
    limit(resource.RLIMIT_NPROC, 0)
    if MEM > 0:
        limit(resource.RLIMIT_AS, MEM)
except BaseException as exc:
    out.write(b"x" + json.dumps("%s: %s" % (type(exc).__name__, exc)).encode() + b"\n")
    out.flush()
    raise SystemExit(1)

dumps = json.JSONEncoder(separators=(",", ":")).encode
cache = collections.OrderedDict()

def program(expr):
    prog = cache.get(expr)
    if prog is not None:
        cache.move_to_end(expr)
        return prog
    try:
        jq.compile(expr)  # alone first: jq's message then points into the user's text
        prog = jq.compile(PRELUDE + expr)
    except Exception as exc:
        prog = str(exc) or type(exc).__name__
    cache[expr] = prog
    if len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return prog

readline = sys.stdin.buffer.readline
write = out.write
setitimer = signal.setitimer
ITIMER_REAL = signal.ITIMER_REAL
out.write(b"r\n")
out.flush()
while True:
    header = readline()
    if not header:
        break
    op, expr, n, alarm, sync = json.loads(header)
    lines = [readline() for _ in range(n)]
    setitimer(ITIMER_REAL, alarm)
    prog = program(expr)
    if isinstance(prog, str):
        write(b"c" + dumps(prog).encode() + b"\n")
    else:
        write(b"k\n")
        if sync:
            out.flush()
        if op != "c":
            first = op == "f"
            for line in lines:
                try:
                    results = prog.input_text(line.decode())
                    if first:
                        for value in results:
                            r = b"o" + dumps(value).encode()
                            break
                        else:
                            r = b"n"
                    else:
                        r = b"o" + dumps(list(results)).encode()
                    if len(r) > MAX_OUT:
                        r = b"e" + dumps("the result is too large (%d bytes)" % len(r)).encode()
                except Exception as exc:
                    r = b"e" + dumps(str(exc) or type(exc).__name__).encode()
                write(r + b"\n")
                if sync:
                    out.flush()
    out.flush()
    setitimer(ITIMER_REAL, 0)
'''


class _Expired(Exception):
    """The caller's deadline passed while talking to a worker."""


def _jq_package_dir() -> str:
    spec = importlib.util.find_spec("jq")
    origin = getattr(spec, "origin", None) if spec else None
    if not origin or os.path.abspath(origin) == os.path.abspath(__file__):
        raise JqError("jq: error: the `jq` package is not installed")
    return os.path.dirname(os.path.abspath(origin))


class _Worker:
    __slots__ = ("proc", "pid", "rfd", "wfd", "rpoll", "wpoll", "rbuf")

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.pid = proc.pid
        self.rfd = proc.stdout.fileno()
        self.wfd = proc.stdin.fileno()
        os.set_blocking(self.wfd, False)
        self.rpoll = select.poll()
        self.rpoll.register(self.rfd, select.POLLIN)
        self.wpoll = select.poll()
        self.wpoll.register(self.wfd, select.POLLOUT)
        self.rbuf = bytearray()

    @classmethod
    def spawn(cls, memory_limit_bytes: int) -> "_Worker":
        args = [
            sys.executable, "-I", "-S", "-c", _WORKER_SOURCE,
            _jq_package_dir(), _PRELUDE, str(memory_limit_bytes), str(MAX_OUTPUT_BYTES),
            str(_WORKER_COMPILE_CACHE),
        ]
        try:
            proc = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env={}, cwd="/", close_fds=True, bufsize=0,
            )
        except OSError as exc:
            raise JqError(f"jq: error: could not start a jq worker process: {exc}") from exc
        worker = cls(proc)
        try:
            lines, eof = worker._read_lines(1, time.monotonic() + _SPAWN_TIMEOUT)
        except _Expired:
            worker.kill()
            raise JqError("jq: error: a jq worker process did not start in time") from None
        if eof or not lines or lines[0] != b"r":
            detail = ""
            if lines and lines[0][:1] == b"x":
                try:
                    detail = ": " + json.loads(lines[0][1:])
                except ValueError:
                    pass
            worker.kill()
            raise JqError(f"jq: error: a jq worker process failed to start{detail}")
        return worker

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except Exception:
            pass
        self.close_pipes()

    def close_pipes(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass

    def crash_description(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except Exception:
            return "the jq worker process stopped responding"
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            if name in ("SIGABRT", "SIGSEGV", "SIGKILL", "SIGBUS"):
                return f"the jq evaluator crashed ({name}; probably out of memory or too deeply nested)"
            return f"the jq evaluator was killed ({name})"
        return f"the jq evaluator exited unexpectedly (status {code})"

    def _write_all(self, data: bytes, deadline: float) -> bool:
        """Write everything; False if the worker went away (EPIPE)."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.wfd, view)
            except BlockingIOError:
                written = 0
            except (BrokenPipeError, ConnectionResetError):
                return False
            view = view[written:]
            if view:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Expired
                self.wpoll.poll(max(1, math.ceil(remaining * 1000)))
        return True

    def _read_lines(self, count: int, deadline: float) -> tuple[list[bytes], bool]:
        """Read up to ``count`` lines; returns (lines, eof).  Raises _Expired at the deadline."""
        lines: list[bytes] = []
        buf = self.rbuf
        pos = 0  # start of the first unconsumed line
        scan = 0  # no newline in buf[pos:scan]
        while True:
            while len(lines) < count:
                nl = buf.find(b"\n", scan)
                if nl < 0:
                    scan = len(buf)
                    break
                lines.append(bytes(buf[pos:nl]))
                pos = scan = nl + 1
            if len(lines) >= count:
                del buf[:pos]
                return lines, False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                del buf[:pos]
                raise _Expired
            if not self.rpoll.poll(max(1, math.ceil(remaining * 1000))):
                continue  # re-check the deadline
            try:
                chunk = os.read(self.rfd, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                buf.clear()
                return lines, True
            buf += chunk

    def run(self, op: str, expression: str, payloads: list[bytes], sync: bool,
            deadline: float, alarm: float):
        """One request.  Returns (status, lines, crashed): status b"k"/b"c<msg>"/None."""
        header = json.dumps([op, expression, len(payloads), alarm, 1 if sync else 0]).encode()
        if not self._write_all(header + b"\n" + b"".join(payloads), deadline):
            return None, [], True
        status_lines, eof = self._read_lines(1, deadline)
        if eof:
            return None, [], True
        status = status_lines[0]
        if status[:1] != b"k":
            return status, [], False
        lines, eof = self._read_lines(len(payloads), deadline)
        return status, lines, eof


class _Pool:
    """Per-process pool of idle workers; a worker is owned by one caller at a time."""

    def __init__(self):
        self.pid = os.getpid()
        self.cond = threading.Condition(threading.Lock())
        self.idle: list[_Worker] = []
        self.workers: set[_Worker] = set()
        self.starting = 0
        self.max_workers = max(1, int(_setting("JQ_MAX_WORKERS", DEFAULT_MAX_WORKERS)))
        mb = _setting("JQ_MEMORY_LIMIT_MB", DEFAULT_MEMORY_LIMIT_MB)
        self.memory_limit_bytes = int(mb) * 1024 * 1024 if mb else 0

    def acquire(self, wait: float) -> _Worker:
        give_up = time.monotonic() + wait
        with self.cond:
            while True:
                while self.idle:
                    worker = self.idle.pop()
                    if worker.alive():
                        return worker
                    self.workers.discard(worker)
                    worker.close_pipes()
                    worker.proc.poll()
                if len(self.workers) + self.starting < self.max_workers:
                    self.starting += 1
                    break
                remaining = give_up - time.monotonic()
                if remaining <= 0:
                    raise JqTimeout(
                        f"jq: error: all {self.max_workers} jq workers stayed busy for {wait}s"
                    )
                self.cond.wait(remaining)
        try:
            worker = _Worker.spawn(self.memory_limit_bytes)
        except BaseException:
            with self.cond:
                self.starting -= 1
                self.cond.notify()
            raise
        with self.cond:
            self.starting -= 1
            self.workers.add(worker)
        return worker

    def release(self, worker: _Worker) -> None:
        with self.cond:
            if worker in self.workers:
                self.idle.append(worker)
                self.cond.notify()
                return
        worker.kill()  # the pool was shut down while this worker was busy

    def discard(self, worker: _Worker) -> None:
        worker.kill()
        with self.cond:
            self.workers.discard(worker)
            self.cond.notify()

    def shutdown(self) -> None:
        """Close all workers (idle ones exit on EOF; busy ones are killed)."""
        with self.cond:
            workers = list(self.workers)
            self.workers.clear()
            self.idle.clear()
        for worker in workers:
            worker.kill()

    def abandon_after_fork(self) -> None:
        """In a forked child: drop our copies of the parent's pipes; the workers are not ours."""
        for worker in list(self.workers):
            worker.close_pipes()
            worker.proc.returncode = 0  # not our child: Popen must never wait for / reap it


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _get_pool() -> _Pool:
    global _pool
    pool = _pool
    if pool is not None and pool.pid == os.getpid():
        return pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            if _pool is not None:
                _pool.abandon_after_fork()
            _pool = _Pool()
        return _pool


def _after_fork_in_child() -> None:
    global _pool, _pool_lock
    _pool_lock = threading.Lock()  # may have been held by another thread at fork time
    if _pool is not None:
        _pool.abandon_after_fork()
        _pool = None


def _shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None and pool.pid == os.getpid():
        pool.shutdown()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_shutdown_pool)


# --------------------------------------------------------------------------- evaluation

_encode_input = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _decode_result(line: bytes, expression: str):
    kind = line[:1]
    if kind == b"o":
        return json.loads(line[1:])
    if kind == b"n":
        return None
    if kind == b"e":
        return JqError(f"jq: error: {json.loads(line[1:])}", expression=expression)
    return JqError("jq: error: malformed reply from the jq worker", expression=expression)


def _evaluate(op: str, expression: str, inputs: list, timeout) -> list:
    """Evaluate ``expression`` over every input; per-input failures are JqError *values*."""
    timeout = _resolve_timeout(timeout)
    _raise_static_problem(expression)
    results: list = [None] * len(inputs)
    pending: list[tuple[int, bytes]] = []
    tree = jq_fast.compiled(expression) if op in ("f", "a") else None
    for index, data in enumerate(inputs):
        try:
            encoded = _encode_input(data)
        except (TypeError, ValueError, RecursionError) as exc:
            results[index] = JqError(f"jq: error: the input is not JSON: {exc}", expression=expression)
            continue
        if tree is not None:  # in the subset portal/jq_fast.py evaluates in the process
            try:
                result = jq_fast.evaluate(tree, data)
                results[index] = [result] if op == "a" else result
                continue
            except (jq_fast.Unsupported, RecursionError):
                pass  # jq fails here, or gives what only jq gives: the sandbox answers
        pending.append((index, encoded.encode("ascii") + b"\n"))
    if op == "c" or pending:
        _run(op, expression, pending, results, timeout)
    return results


def _run(op: str, expression: str, pending: list, results: list, timeout: float) -> None:
    pool = _get_pool()
    budget = timeout  # time the expression may spend running, over all attempts
    sync = False
    crashes = 0
    while True:
        worker = pool.acquire(timeout)
        started = time.monotonic()
        try:
            status, lines, crashed = worker.run(
                op, expression, [payload for _, payload in pending], sync,
                deadline=started + budget, alarm=budget + _ALARM_GRACE,
            )
        except _Expired:
            pool.discard(worker)
            raise JqTimeout(f"jq expression exceeded {timeout}s", expression=expression) from None
        except BaseException:
            pool.discard(worker)  # state unknown (e.g. KeyboardInterrupt mid-request)
            raise
        budget -= time.monotonic() - started

        if not crashed:
            pool.release(worker)
            if status[:1] == b"c":
                try:
                    message = json.loads(status[1:])
                except ValueError:
                    message = "jq: error: the expression does not compile"
                raise JqCompileError(_compile_message(message), expression=expression)
            for (index, _), line in zip(pending, lines):
                results[index] = _decode_result(line, expression)
            return

        # The worker died (libjq abort()s on allocation failure, deep recursion segfaults...).
        description = worker.crash_description()
        pool.discard(worker)
        crashes += 1
        if status is None:
            # Nothing arrived: outside sync mode the worker had not flushed anything yet; in
            # sync mode (status flushed right after compiling) it died while compiling.
            if sync:
                raise JqError(f"jq: error: {description}", expression=expression)
        else:
            for (index, _), line in zip(pending, lines):
                results[index] = _decode_result(line, expression)
            done = len(lines)
            if sync and done < len(pending):  # in sync mode the next input is the culprit
                results[pending[done][0]] = JqError(f"jq: error: {description}", expression=expression)
                done += 1
            pending = pending[done:]
            if not pending:
                return
            if crashes >= _MAX_CRASHES_PER_CALL:
                for index, _ in pending:
                    results[index] = JqError(
                        f"jq: error: not evaluated after repeated crashes; {description}",
                        expression=expression,
                    )
                return
        sync = True  # retry the rest one flush per input, so a repeat crash is attributable
        if budget <= 0:
            raise JqTimeout(f"jq expression exceeded {timeout}s", expression=expression)


# --------------------------------------------------------------------------- public API


@functools.lru_cache(maxsize=4096)
def _compile_problem(expression: str) -> str | None:
    problem = _static_problem(expression)
    if problem:
        return problem
    try:
        _evaluate("c", expression, [], None)
    except JqCompileError as exc:
        return exc.message
    return None


def jq_compile_check(expression: str) -> None:
    """Raise JqCompileError (with jq's message) unless ``expression`` compiles here.  Cached."""
    _check_expression_type(expression)
    problem = _compile_problem(expression)
    if problem:
        raise JqCompileError(problem, expression=expression)


def _single(op: str, expression: str, data, timeout):
    result = _evaluate(op, expression, [data], timeout)[0]
    if isinstance(result, JqError):
        raise result
    return result


def jq_first(expression: str, data, *, timeout: float | None = None):
    """The first output of ``expression`` run on ``data``, or None if it produces none."""
    return _single("f", expression, data, timeout)


class Undecided(Exception):
    """Only the sandbox can evaluate this expression on this input (jq_first_here)."""


def jq_first_here(expression: str, data):
    """``jq_first`` answered in this process alone, never waiting on the sandbox: for a hot path that may skip work
    when it knows the answer (an automation's condition, in the writer's transaction). Raises Undecided when the
    expression is outside portal/jq_fast.py's subset, is refused before compiling, or jq would fail or write a
    number differently on this input: then only ``jq_first`` can say."""
    if not isinstance(expression, str) or _static_problem(expression):
        raise Undecided
    tree = jq_fast.compiled(expression)
    if tree is None:
        raise Undecided
    try:
        return jq_fast.evaluate(tree, data)
    except (jq_fast.Unsupported, RecursionError):
        raise Undecided from None


def jq_all(expression: str, data, *, timeout: float | None = None) -> list:
    """All outputs of ``expression`` run on ``data``."""
    return _single("a", expression, data, timeout)


def jq_first_many(expression: str, inputs: list, *, timeout: float | None = None) -> list:
    """``jq_first`` over each input in one round trip.  A slot whose input fails holds a
    JqError instance (not raised); compile errors and a timeout of the batch (``timeout``
    bounds the whole batch) are raised."""
    inputs = list(inputs)
    if not inputs:
        _resolve_timeout(timeout)
        _raise_static_problem(expression)
        return []
    return _evaluate("f", expression, inputs, timeout)
