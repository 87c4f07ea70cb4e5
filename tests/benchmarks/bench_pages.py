"""The catalog table page `/catalog/Deployment/` as a signed-in user sees it: HTML through the bench's gunicorn.

Six pages of the largest synthetic blueprint, each fetched again and again at concurrency 1: the first page in
the default order (`$identifier`); two deep pages reached by following the "Next page" link — DEEP_PAGES
clicks, and as far towards the end of the table as a walk at END_WALK_LIMIT rows a page gets within
--duration — which keyset pages should serve as fast as the first; the first page sorted by a property
descending; a text search of title and identifier; a property-equality filter. Each for an admin (no
permission filter) and for a member (the permission filter is part of the same query). The admin walks to the
deep pages; the member opens the same links (a cursor is a position in the sort order, not a user's).

The sessions are made in this process (Django's `force_login` against the bench database; the server has the
same SECRET_KEY) and sent as the session cookie. Each page also runs in this process under
CaptureQueriesContext: the SQL statements it costs and the time spent waiting on them.
"""
import os
import re
import time
from dataclasses import dataclass
from html import unescape
from urllib.parse import parse_qsl, urlencode, urlsplit

from bench_http import Client, HttpError, run_loop

BLUEPRINT = "Deployment"
TABLE = f"/catalog/{BLUEPRINT}/"
PAGE_SIZE = 50  # the table's default
DEEP_PAGES = 50  # "Next page" clicks to the first deep page
END_WALK_LIMIT = 200  # rows a page on the walk towards the end of the table (the most a page shows)
END_WALK_CLICKS = 1000  # that walk's bound by count (200,000 rows); --duration bounds it by time
SEARCH_TEXT = "Harbor Proxy"  # in the titles of 219 deployments at 100,000 entities
USERS = {"admin": ("pages-admin@example.com", True), "member": ("pages-member@example.com", False)}
NEXT_LINK = re.compile(r'<a href="([^"]+)" rel="next">')
ROW = re.compile(r'<div class="muted ident">')


@dataclass(frozen=True)
class PageCase:
    key: str
    label: str
    path: str


FIRST = PageCase("first", "first page (sort $identifier)", TABLE)
SORTED = PageCase("sorted", "sorted by deployedAt descending", f"{TABLE}?{urlencode({'sort': '-deployedAt'})}")
SEARCH = PageCase("search", f"search {SEARCH_TEXT!r}", f"{TABLE}?{urlencode({'q': SEARCH_TEXT})}")
FILTER = PageCase("filter", "filter status = failed", f"{TABLE}?{urlencode({'f.status': 'failed'})}")


class PageClient(Client):
    """GETs HTML pages with a session cookie, one keep-alive connection per thread."""

    def __init__(self, host, port, cookie):
        super().__init__(host, port)
        self.headers = {"Accept": "text/html", "Cookie": cookie}

    def get(self, path):
        """(status, body bytes, seconds); reconnects once when the server closed the connection."""
        return self.request("GET", path, headers=self.headers)

    def page(self, path):
        status, body, elapsed = self.get(path)
        if status != 200:
            raise HttpError(f"GET {path} -> {status}: {body[:200]!r}")
        return body, elapsed


def django_setup(env):
    """This process becomes a Django process configured like the bench server (same database and keys)."""
    import django

    os.environ.update(env)
    django.setup()


def signed_in(email, admin):
    """A Django test client logged in as the user (created when missing); it holds the session cookie."""
    from django.test import Client as DjangoClient

    from catalog.services.users import user_ensure
    from portal.actor import Actor

    client = DjangoClient()
    client.force_login(user_ensure(actor=Actor.system(), email=email, admin=admin))
    return client


def session_cookie(django_client):
    from django.conf import settings

    return f"{settings.SESSION_COOKIE_NAME}={django_client.cookies[settings.SESSION_COOKIE_NAME].value}"


def walk(client, page_limit, clicks, seconds):
    """Follow "Next page" from the first page at `page_limit` rows a page, `clicks` times, to the last page or for
    `seconds`: (the path of the page reached, at the table's own page size; rows before it; clicks)."""
    path, rows_before, done = f"{TABLE}?{urlencode({'limit': page_limit})}", 0, 0
    deadline = time.perf_counter() + seconds
    while done < clicks and time.perf_counter() < deadline:
        body = client.page(path)[0].decode()
        link = NEXT_LINK.search(body)
        if link is None:
            break
        path, rows_before, done = TABLE + unescape(link.group(1)), rows_before + len(ROW.findall(body)), done + 1
    query = [(name, value) for name, value in parse_qsl(urlsplit(path).query) if name != "limit"]
    return f"{TABLE}?{urlencode(query)}", rows_before, done


def deep_cases(client, seconds):
    """A page DEEP_PAGES clicks deep, and one as near the end of the table as a walk of `seconds` gets."""
    cases = []
    for key, page_limit, clicks in (("deep", PAGE_SIZE, DEEP_PAGES), ("end", END_WALK_LIMIT, END_WALK_CLICKS)):
        path, rows_before, done = walk(client, page_limit, clicks, seconds)
        cases.append(PageCase(key, f"from row {rows_before + 1:,} ({done} x Next at {page_limit}/page)", path))
    return cases


def sql_cost(django_client, path, tries=3):
    """(statements, ms waiting on them) of an in-process request of the page: the quickest of `tries`, after a
    warm-up request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    django_client.get(path)
    costs = []
    for _ in range(tries):
        with CaptureQueriesContext(connection) as captured:
            response = django_client.get(path)
        if response.status_code != 200:
            raise HttpError(f"in-process GET {path} -> {response.status_code}")
        costs.append((sum(float(query["time"]) for query in captured) * 1000, len(captured)))
    sql_ms, statements = min(costs)
    return statements, sql_ms


def measure_case(client, django_client, case, args, meter, summarize):
    body, _ = client.page(case.path)
    statements, sql_ms = sql_cost(django_client, case.path)

    def call(i):
        return client.page(case.path)[1]

    sample = run_loop(f"GET {case.path}", call, requests=args.requests, seconds=args.duration, warmup=args.warmup,
                      meter=meter)
    return {"label": case.label, "path": case.path, "html_bytes": len(body), "rows": len(ROW.findall(body.decode())),
            "sql_statements": statements, "sql_ms": round(sql_ms, 2), **summarize(sample)}


def measure(port, env, args, meter, *, summarize, log):
    """{user: {case key: figures}} for the admin and the member, and the deep pages' p50 over the first page's."""
    from django.db import connections

    django_setup(env)
    users = {}
    try:
        django_clients = {role: signed_in(email, admin) for role, (email, admin) in USERS.items()}
        clients = {role: PageClient("127.0.0.1", port, session_cookie(c)) for role, c in django_clients.items()}
        log(f"  following Next page to the deep pages (each walk at most {args.duration:.0f}s)")
        cases = [FIRST, *deep_cases(clients["admin"], args.duration), SORTED, SEARCH, FILTER]
        for role, client in clients.items():
            users[role] = {}
            for case in cases:
                log(f"  {role}: {case.label}")
                users[role][case.key] = measure_case(client, django_clients[role], case, args, meter, summarize)
            client.close()
    finally:
        connections.close_all()
    deep_over_first = {role: {key: _ratio(figures[key]["p50_ms"], figures["first"]["p50_ms"]) for key in ("deep", "end")}
                       for role, figures in users.items()}
    return {"blueprint": BLUEPRINT, "page_size": PAGE_SIZE, "users": users, "deep_over_first_p50": deep_over_first}


def _ratio(value, base):
    return round(value / base, 2) if base else None


def report_lines(pages):
    lines = [f"catalog table {TABLE}: HTML, signed in, {pages['page_size']} rows a page, concurrency 1",
             f"    {'user':7} {'page':40} {'p50 ms':>7} {'p95 ms':>7} {'rows':>4} {'HTML bytes':>10} {'SQL':>3}"
             f" {'SQL ms':>6} {'web cpu':>7} {'pg cpu':>6} {'others':>6}"]
    for role, cases in pages["users"].items():
        for row in cases.values():
            lines.append(f"    {role:7} {row['label']:40} {row['p50_ms']:>7.1f} {row['p95_ms']:>7.1f} {row['rows']:>4}"
                         f" {row['html_bytes']:>10,} {row['sql_statements']:>3} {row['sql_ms']:>6.1f}"
                         f" {row['worker_cpu_ms_per_req']:>7.1f} {row['pg_cpu_ms_per_req']:>6.1f}"
                         f" {row['others_busy_pct']:>5.0f}%"
                         + (f"  errors={row['errors']} ({row.get('first_error')})" if row["errors"] else ""))
    for role, ratios in pages["deep_over_first_p50"].items():
        cases = pages["users"][role]
        lines.append(f"    {role}: deep page p50 / first page p50: "
                     + ", ".join(f"{cases[key]['label'].split(' (')[0]} {ratio:.2f}x" for key, ratio in ratios.items() if ratio))
    lines.append("    (SQL, SQL ms: statements of an in-process request of the page and the time waiting on them, the"
                 " quickest of 3; web/pg cpu: CPU ms per request; others: share of the machine busy with anything else)")
    return lines
