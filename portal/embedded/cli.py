"""``python -m portal.embedded start|env|status|stop``.

Servers started here are *pinned*: they are not reference counted, stay up until ``stop``, and no holder's exit
stops them.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

from portal.embedded.addresses import portal_home
from portal.embedded.holders import ensure, is_external, snapshot, stop_embedded_services
from portal.embedded.home import EmbeddedServiceError, HomeLayout

SHELL_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_?")


def _shell_value(value: str) -> str:
    return value if value and set(value) <= SHELL_SAFE else shlex.quote(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m portal.embedded",
        description="Manage the embedded PostgreSQL/Redis under $PORTAL_HOME. "
        "Servers started here are not reference counted: they keep running "
        "until `stop`.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "env"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    paths = HomeLayout(portal_home())

    if args.command in ("start", "env"):
        try:
            env = ensure(register=False, pin=True, cli=True)
        except EmbeddedServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.command == "env":
            for key, value in env.items():
                print(f"{key}={_shell_value(value)}")
        else:
            if not env:
                print("DATABASE_URL and REDIS_URL are set: nothing embedded to start.")
            for key, value in env.items():
                print(f"{key}={value}")
            print(f"(running until `python -m portal.embedded stop`; data in {paths.home})")
        return 0

    if args.command == "stop":
        snap = snapshot(paths) if paths.home.is_dir() else None
        stop_embedded_services()
        if snap and snap["holders"]:
            print(f"warning: stopped while held by pids {snap['holders']}", file=sys.stderr)
        print(f"stopped embedded services for {paths.home}")
        return 0

    # status
    snap = snapshot(paths)
    wanted = []
    for name, var in (("postgres", "DATABASE_URL"), ("redis", "REDIS_URL")):
        info = snap[name]
        external = is_external(var, info["url"], cli=True)
        if info["running"]:
            line = f"{name}: running (pid {info['pid']}) {info['url']}"
        else:
            line = f"{name}: stopped"
        if external:
            line += f"  [{var} is set: not used]"
        else:
            wanted.append(info["running"])
        print(line)
    holders = ", ".join(map(str, snap["holders"])) or "none"
    print(f"holders: {holders}; pinned: {'yes' if snap['pinned'] else 'no'}; home: {paths.home}")
    return 0 if all(wanted) else 1
