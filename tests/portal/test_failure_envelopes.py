"""Every failure is an envelope (issue 11): each class of odd input — NUL characters, numbers out of range,
NaN/Infinity, huge durations, malformed or deeply nested JSON — sent to every write endpoint of /v1 (found in
the URL configuration, so a new endpoint is covered without editing this file) answers 4xx in our JSON
envelope and writes nothing; pages answer 4xx or a normal page; what escapes a view by accident answers an
envelope (API) or a friendly page (browser), never Django's HTML 500."""
import json
import re
from io import StringIO

import pytest
from django.test import override_settings
from django.apps import apps
from django.core.management import call_command
from django.db import DatabaseError, DataError, OperationalError, connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver

from actions.models import Action
from actions.services.runs import run_request
from catalog.models import Entity
from catalog.services.backstage import backstage_location_register
from catalog.services.deployments import deployment_record
from portal.actor import Actor
from tests.factories import UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")
PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
HUGE = 10**30


# --- the world and the endpoints ------------------------------------------------------------------------------

@pytest.fixture
def seeded_world(db):
    """The seed catalog and the starter actions, a running service, a run, a team: every path parameter of
    every route names something that exists, so a request gets past its 404 to the input it carries."""
    call_command("load_catalog", stdout=StringIO())
    call_command("load_starter", stdout=StringIO())
    admin = UserFactory(email="root@example.com", admin=True, teams=["Platform"])
    actor = Actor(user=admin, origin="API")
    component = Entity.objects.filter(blueprint__identifier="Component").order_by("id").first()
    deployment_record(actor=actor, data={"service": component.identifier, "environment": "production", "version": "1.0.0",
                                         "commitSha": "abc123", "jobUrl": "https://ci.example.com/1"})
    run = run_request(actor=actor, action=Action.objects.get(identifier="create_dev_env"), properties={"branch": "main"},
                      entity_identifier=None)
    # Named as the API samples name identifiers; a file that does not exist, so a refresh only reports it.
    with override_settings(BACKSTAGE_FILE_ROOTS=["/nonexistent"]):
        backstage_location_register(actor=actor, data={"identifier": "Component", "type": "file",
                                                       "target": "/nonexistent/catalog-info.yaml"})
    return {"api": api_for(admin), "admin": admin, "component": component.identifier, "run": run.id}


def path_samples(seeded_world, route):
    """An existing value for each path parameter of `route`."""
    entity_route = route.startswith("v1/blueprints/<str:blueprint>/entities/")
    samples = {
        "blueprint": "Component",
        "identifier": (seeded_world["component"] if entity_route else "create_dev_env" if route.startswith("v1/actions/")
                       else "Component"),
        "run_id": seeded_world["run"],
        "name": "Platform",
        "email": seeded_world["admin"].email,
        "service": seeded_world["component"],
        "environment": "production",
        "kind": "service",
        "event_id": "resync-1",
    }
    missing = [name for name in PARAM.findall(route) if name not in samples]
    assert not missing, f"add a sample value for {missing} (route {route})"
    return samples


def routes():
    """(route, view) of every URL pattern, from the URL configuration."""
    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.callback

    return list(walk(get_resolver().url_patterns, ""))


def write_endpoints():
    """(method, route) of every POST/PUT/PATCH/DELETE under /v1."""
    endpoints = []
    for route, callback in routes():
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if route.startswith("v1/") and view_class is not None:
            endpoints += [(method, route) for method in WRITE_METHODS if hasattr(view_class, method)]
    return endpoints


def url_of(route, values):
    return "/" + PARAM.sub(lambda match: values[match.group(1)], route)


# --- sending, and what every refusal must look like ------------------------------------------------------------

def row_counts():
    """Rows of every table of ours, in one query (the audit log among them: every write records an event)."""
    models = [model for model in apps.get_models() if model._meta.app_label in {"portal", "catalog", "actions", "audit",
                                                                                  "auth", "guardian"}]
    columns = ", ".join(f'(SELECT count(*) FROM "{model._meta.db_table}")' for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}")
        return dict(zip((model._meta.label for model in models), cursor.fetchone()))


def send(client, method, url, raw=None, **kwargs):
    """One request (a `raw` JSON body, or the client's own `data=`) in a savepoint rolled back afterwards, so
    each starts from the same world. Returns (response, rows written) — the rows are None when the request
    left the transaction aborted (a query failed in the database)."""
    if raw is not None:
        kwargs.update(data=raw, content_type="application/json")
    savepoint = transaction.savepoint()
    try:
        before = row_counts()
        response = getattr(client, method)(url, **kwargs)
        try:
            after = row_counts()
            written = {label: after[label] - count for label, count in before.items() if after[label] != count}
        except DatabaseError:
            written = None
    finally:
        transaction.savepoint_rollback(savepoint)
    return response, written


def refusal_problem(response, written, *, status=None, message=None):
    """What is wrong with the answer to a request that must be refused (None: nothing)."""
    if response.status_code >= 500 or response.status_code < 400:
        return f"answered {response.status_code}: {response.content[:200]!r}"
    if status is not None and response.status_code != status:
        return f"answered {response.status_code}, not {status}: {response.content[:200]!r}"
    if not response.get("Content-Type", "").startswith("application/json"):
        return f"answered {response.status_code} as {response.get('Content-Type')}: {response.content[:200]!r}"
    body = response.json()
    if body.get("ok") is not False or not isinstance(body.get("error"), str) or not isinstance(body.get("message"), str):
        return f"answered {response.status_code} without the envelope: {body}"
    if message is not None and message not in body["message"]:
        return f"answered {response.status_code} with message {body['message']!r}, which does not say {message!r}"
    if written is None:
        return "left the database transaction aborted (a query failed)"
    if written:
        return f"was refused ({response.status_code}) but wrote {written}"
    return None


def lenient_problem(response, written):
    """For odd but possibly valid input: never 5xx; a refusal is an envelope and writes nothing."""
    if response.status_code < 400 and response.status_code != 207:
        return None if written is not None else "left the database transaction aborted (a query failed)"
    if response.status_code == 207:
        return None
    return refusal_problem(response, written)


def check_every_endpoint(seeded_world, requests):
    """`requests(method, route, url)` yields (method, url, raw body, judge) for an endpoint; every problem is
    collected so one run names every endpoint at fault."""
    api = seeded_world["api"]
    api.raise_request_exception = False
    endpoints = write_endpoints()
    assert {("post", "v1/blueprints/<str:blueprint>/entities"), ("put", "v1/actions/<str:identifier>"),
            ("patch", "v1/actions/runs/ack")} <= set(endpoints) and len(endpoints) >= 25, endpoints
    problems = []
    for method, route in endpoints:
        url = url_of(route, path_samples(seeded_world, route))
        for send_method, send_url, raw, judge in requests(method, route, url):
            response, written = send(api, send_method, send_url, raw)
            problem = judge(response, written)
            if problem:
                problems.append(f"{send_method.upper()} {send_url} {(raw or '')[:80]!r}: {problem}")
    assert not problems, "\n".join(problems)


# --- the classes, sent to every write endpoint -----------------------------------------------------------------

def test_nul_in_a_path_parameter_is_refused_naming_it(seeded_world):
    def requests(method, route, url):
        samples = path_samples(seeded_world, route)
        for name in PARAM.findall(route):
            bad = url_of(route, {**samples, name: samples[name] + "%00"})
            yield method, bad, "{}", lambda r, w, name=name: refusal_problem(
                r, w, status=422, message=f"{name}: must not contain NUL characters")

    check_every_endpoint(seeded_world, requests)


NUL_BODIES = [
    '{"identifier": "probe\\u0000", "title": "probe"}',
    '{"identifier": "probe", "title": "a\\u0000b"}',
    '{"identifier": "probe", "properties": {"type": "\\u0000"}}',
    '{"identifier": "probe", "properties": {"ty\\u0000pe": "x"}}',
    '{"entities": ["\\u0000"], "runIds": ["\\u0000"]}',
    '"\\u0000"',
]


def test_nul_in_a_body_string_or_key_is_refused_naming_the_field(seeded_world):
    def requests(method, route, url):
        for raw in NUL_BODIES:
            yield method, url, raw, lambda r, w: refusal_problem(r, w, status=422, message="must not contain NUL characters")

    check_every_endpoint(seeded_world, requests)


SURROGATE_BODIES = [  # valid JSON syntax, but no Unicode text: UTF-8 (and so PostgreSQL) cannot hold them
    '{"identifier": "probe\\ud800", "title": "probe"}',
    '{"identifier": "probe", "title": "a\\udfffb"}',
    '{"identifier": "probe", "properties": {"type": "\\ud83d"}}',
    '{"identifier": "probe", "properties": {"ty\\udc00pe": "x"}}',
    '{"entities": ["\\ud800"], "runIds": ["\\ud800"]}',
]


def test_lone_surrogates_in_a_body_are_refused_naming_the_field(seeded_world):
    def requests(method, route, url):
        for raw in SURROGATE_BODIES:
            yield method, url, raw, lambda r, w: refusal_problem(r, w, status=422, message="must be valid Unicode")

    check_every_endpoint(seeded_world, requests)


def test_nul_in_a_query_parameter_is_refused_naming_it(seeded_world):
    def requests(method, route, url):
        for query in ("run_id=%00", "upsert=true&delete_dependents=%00", "include=a&include=%00", "%00=1"):
            yield method, f"{url}?{query}", "{}", lambda r, w: refusal_problem(
                r, w, status=422, message="must not contain NUL characters")

    check_every_endpoint(seeded_world, requests)


NOT_JSON_BODIES = ['{"identifier": "probe", "title": NaN}', '{"limit": Infinity}', '[-Infinity]']
OVERFLOWING_BODIES = [('{"identifier": "probe", "properties": {"n": 1e999}}', "properties.n: is too large for a number"),
                      ('{"n": [-1E400]}', "n[0]: is too large for a number")]


# The fields write endpoints read, for bodies that set every one of them to the same odd value.
FIELDS = ["identifier", "title", "icon", "name", "status", "statusLabel", "limit", "visibilityTimeoutMs", "installationId",
          "entity", "properties", "relations", "entities", "runIds", "response", "message", "terminationStatus",
          "version", "commitSha", "jobUrl", "service", "environment", "description", "team", "schema", "query", "from",
          "trigger", "invocationMethod", "settings", "roles", "teams", "users", "execute", "approve"]


def bodies_with_numbers(number):
    """Every field a write endpoint reads, set to `number`, and the same fields in their usual shape with
    `number` where a number may go."""
    yield json.dumps({field: number for field in FIELDS})
    yield json.dumps({"identifier": "probe", "title": "probe", "properties": {"replicas": number, "type": number},
                      "limit": number, "visibilityTimeoutMs": number, "runIds": [number], "entities": [number],
                      "combinator": "and", "rules": [{"property": "type", "operator": ">", "value": number}]})


def test_numbers_beyond_range_are_not_json_and_large_ones_never_fail_the_server(seeded_world):
    """NaN and Infinity are not JSON (400); a number that overflows a float (1e999) is refused naming its path
    (422); huge integers and the largest floats are JSON: an endpoint may refuse them, never with a 5xx, and
    may store them (jsonb)."""
    def requests(method, route, url):
        for raw in NOT_JSON_BODIES:
            yield method, url, raw, lambda r, w: refusal_problem(r, w, status=400)
        for raw, message in OVERFLOWING_BODIES:
            yield method, url, raw, lambda r, w, message=message: refusal_problem(r, w, status=422, message=message)
        for number in (HUGE, -1.7976931348623157e308):
            for raw in bodies_with_numbers(number):
                yield method, url, raw, lenient_problem
        for query in ("limit=99999999999999999999&run_id=99999999999999999999&upsert=99999999999999999999",
                      "limit=-1e999"):
            yield method, f"{url}?{query}", "{}", lenient_problem

    check_every_endpoint(seeded_world, requests)
    response = seeded_world["api"].post("/v1/teams", data='{"name": NaN}', content_type="application/json")
    assert response.json() == {"ok": False, "error": "invalid_json",
                               "message": "Malformed JSON: NaN is not a JSON value (numbers must be finite)"}


def test_malformed_and_deeply_nested_json_is_refused(seeded_world):
    deep = "[" * 100 + "]" * 100
    deeper = '{"a": ' * 100_000 + "1" + "}" * 100_000  # past Python's recursion limit
    long_number = '{"limit": ' + "9" * 5000 + "}"  # past Python's limit on integer digits

    def requests(method, route, url):
        for raw in ('{"identifier": ', "{'a': 1}", "[1, 2", deep, deeper, long_number, '{"a": 1} trailing'):
            yield method, url, raw, refusal_problem

    check_every_endpoint(seeded_world, requests)


def test_fields_of_the_wrong_json_type_are_refused_as_a_4xx(seeded_world):
    """A list or an object where a string is expected (unhashable: it broke set and dict lookups) or any
    other type, and bodies that are not objects."""
    def requests(method, route, url):
        for value in (["x"], {"a": 1}, True, None, "x" * 5000):
            yield method, url, json.dumps({field: value for field in FIELDS}), lenient_problem
            yield method, url, json.dumps({"identifier": value}), lenient_problem
        for raw in ("[]", '"text"', "true", "null", "1"):
            yield method, url, raw, lenient_problem

    check_every_endpoint(seeded_world, requests)


def test_strings_longer_than_their_column_are_refused_naming_the_field(seeded_world):
    api = seeded_world["api"]
    definition = api.get("/v1/actions/create_dev_env").json()["action"]
    cases = [
        ("post", "/v1/blueprints/Component/entities", {"identifier": "e1", "title": "t" * 1001}, "title: must be at most 1000 characters"),
        ("post", "/v1/blueprints/Component/entities", {"identifier": "e1", "icon": "i" * 101}, "icon: must be at most 100 characters"),
        ("post", "/v1/actions", {**definition, "identifier": "a2", "title": "t" * 201}, "title: must be at most 200 characters"),
        ("put", "/v1/actions/create_dev_env", {**definition, "icon": "i" * 101}, "icon: must be at most 100 characters"),
        ("post", "/v1/blueprints", {"identifier": "b2", "title": "t" * 201, "schema": {}}, "title: must be at most 200 characters"),
        ("patch", "/v1/blueprints/Component", {"icon": "i" * 101}, "icon: must be at most 100 characters"),
    ]
    for method, url, body, message in cases:
        response, written = send(api, method, url, json.dumps(body))
        assert refusal_problem(response, written, status=422) is None, (url, response.content)
        assert response.json()["message"] == message


# --- durations and numbers of an action definition --------------------------------------------------------------

HUGE_DEFINITION_VALUES = [
    ("approvalTimeout", "P99999999D", "approvalTimeout: must be at most P3650D"),
    ("approvalTimeout", "P9999999999D", "approvalTimeout: must be at most P3650D"),
    ("runTimeout", "PT99999999999999999999H", "runTimeout: must be at most P3650D"),
    ("runTimeout", "P3651D", "runTimeout: must be at most P3650D"),
    ("ttl.default", "P99999999D", "ttl.default: must be at most P3650D"),
    ("ttl.maximum", "P99999999DT1H", "ttl.maximum: must be at most P3650D"),
    ("ttl.extendBy", "P9999999999D", "ttl.extendBy: must be at most P3650D"),
    ("quota.liveEntitiesPerUser", HUGE, "quota.liveEntitiesPerUser: must be at most 1000000"),
    ("quota.perUser", {"limit": HUGE, "period": "day"}, "quota.perUser.limit: must be at most 1000000"),
]


def test_huge_durations_and_quotas_of_an_action_are_refused_naming_the_field_and_the_longest_runs(seeded_world):
    api = seeded_world["api"]
    original = api.get("/v1/actions/create_dev_env").json()["action"]
    problems = []
    for field, value, message in HUGE_DEFINITION_VALUES:
        definition = json.loads(json.dumps(original))
        if field.startswith("ttl."):
            definition["ttl"] = {**definition["ttl"], "maximum": "P3650D", field[4:]: value}
        elif field.startswith("quota."):
            definition["quota"] = {field[6:]: value}
        else:
            definition[field] = value
        for method, url, body in (("post", "/v1/actions", {**definition, "identifier": "create_dev_env_2"}),
                                  ("put", "/v1/actions/create_dev_env", definition)):
            response, written = send(api, method, url, json.dumps(body))
            problem = refusal_problem(response, written, status=422)
            if problem or response.json()["message"] != message:
                problems.append(f"{method} {field}={value!r}: {problem or response.json()['message']}")
    assert not problems, "\n".join(problems)

    # the longest is accepted, and a run under it computes its deadlines
    original.update({"approvalTimeout": "P3650D", "runTimeout": "P3650D", "requiredApproval": {"type": "ANY"},
                     "ttl": {**original["ttl"], "maximum": "P3650D", "default": "P3650D", "extendBy": "P3650D"}})
    response = api.put("/v1/actions/create_dev_env", original, format="json")
    assert response.status_code == 200, response.json()
    response = api.post("/v1/actions/create_dev_env/runs", {"properties": {"branch": "long"}}, format="json")
    assert response.status_code == 202, response.json()


# --- the backstop: what escapes a view by accident --------------------------------------------------------------

@pytest.fixture
def failing_team_create(monkeypatch):
    """POST /v1/teams raising what the test says, as a service with a missing check would."""
    def arm(exc):
        def fail(**kwargs):
            raise exc
        monkeypatch.setattr("catalog.api.teams.team_create", fail)
    return arm


@pytest.mark.parametrize("exc, status, error, message", [
    (DataError("integer out of range"), 422, "invalid_request",
     "The database refused a value of this request: integer out of range"),
    (OverflowError("date value out of range"), 422, "invalid_request", "A number or duration in this request is out of range."),
    (OperationalError("connection refused"), 503, "unavailable",
     "The portal cannot reach its database right now; try again shortly."),
])
def test_a_database_or_range_failure_escaping_a_view_is_an_envelope(admin_api, failing_team_create, exc, status, error,
                                                                    message):
    failing_team_create(exc)
    response = admin_api.post("/v1/teams", {"name": "x"}, format="json")
    assert response.status_code == status
    assert response.json() == {"ok": False, "error": error, "message": message}
    assert response.get("Retry-After") == ("30" if status == 503 else None)


def test_anything_else_escaping_a_view_is_a_500_envelope_naming_the_request_id(admin_api, failing_team_create, caplog):
    failing_team_create(RuntimeError("boom"))
    api = admin_api
    api.raise_request_exception = False
    response = api.post("/v1/teams", {"name": "x"}, format="json", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert response.json() == {"ok": False, "error": "internal_error", "message": "Internal error; the request id is req-42."}
    logged = [record for record in caplog.records if record.levelname == "ERROR" and record.exc_info]
    assert logged and "boom" in str(logged[0].exc_info[1])


def test_an_unknown_api_route_is_a_404_envelope(admin_api):
    response = admin_api.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error": "not_found", "message": "No API route GET /v1/no-such-thing."}


def test_a_failure_outside_a_view_is_an_envelope_under_v1(admin_api, monkeypatch):
    """A middleware failing (here the rate limiter's key) is answered by handler500, not a DRF view."""
    from portal.middleware import ApiGuardMiddleware

    def fail(request):
        raise RuntimeError("boom")
    monkeypatch.setattr(ApiGuardMiddleware, "_caller_key", staticmethod(fail))
    api = admin_api
    api.raise_request_exception = False
    response = api.get("/v1/blueprints", HTTP_X_REQUEST_ID="req-7")
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert response.json() == {"ok": False, "error": "internal_error", "message": "Internal error; the request id is req-7."}


# --- pages ---------------------------------------------------------------------------------------------------

def page_routes():
    """Every page route (not /v1, the admin or the demo receiver)."""
    return [route for route, _view in routes() if not route.startswith(("v1/", "admin/", "demo/", "healthz"))]


def page_samples(seeded_world, route):
    identifier = {"actions/": "create_dev_env", "initiatives/": "servicesAtSilver",  # the starter's
                  "backstage/": "Component"}  # seeded_world's location
    samples = {"blueprint": "Component",
               "identifier": next((v for k, v in identifier.items() if route.startswith(k)), seeded_world["component"]),
               "run_id": seeded_world["run"], "service": seeded_world["component"], "environment": "production",
               "scorecard": "productionReadiness",  # the starter's, on Component
               "team": "Platform"}  # seeded_world's admin is in it
    missing = [name for name in PARAM.findall(route) if name not in samples]
    assert not missing, f"add a sample value for {missing} (page route {route})"
    return samples


ODD_PAGE_QUERIES = [  # grouped where no value stops the page before the others are read
    "limit=99999999999999999999&entity=99999999999999999999&all=1", "limit=1e999",
    "after=99999999999999999999&status=%ff&input=%ff", "before=eyJ4IjoxfQ&sort=%ff", "after=%ff%fe",
    "f.type=99999999999999999999&q=" + "x" * 5000, "f.type=1e999&sort=-properties.type",
]


def page_problem(response):
    if response.status_code >= 500:
        return f"answered {response.status_code}"
    if response.status_code >= 400 and not response.get("Content-Type", "").startswith("text/html"):
        return f"answered {response.status_code} as {response.get('Content-Type')}"
    return None


@pytest.fixture
def signed_in_admin(seeded_world, client):
    client.force_login(seeded_world["admin"])
    client.raise_request_exception = False
    return client


def test_pages_answer_nul_and_odd_values_with_a_4xx_or_a_normal_page(seeded_world, signed_in_admin):
    problems = []

    def check(method, url, data=None, *, refused=False):
        response, written = send(signed_in_admin, method, url, **({"data": data} if data is not None else {}))
        problem = page_problem(response)
        if refused and not problem:
            problem = None if response.status_code == 400 and not written else (
                f"answered {response.status_code}, wrote {written}")
        if problem:
            problems.append(f"{method.upper()} {url} {data or ''}: {problem}")

    for route in page_routes():
        samples = page_samples(seeded_world, route)
        url = url_of(route, samples)
        for name in PARAM.findall(route):
            check("get", url_of(route, {**samples, name: samples[name] + "%00"}), refused=True)
        check("get", f"{url}?q=%00", refused=True)
        check("get", f"{url}?f.%00=1", refused=True)
        for query in ODD_PAGE_QUERIES:
            check("get", f"{url}?{query}")
        check("post", url, {"name": "view\x00", "reason": "\x00", "branch": "main", "decision": "APPROVE"}, refused=True)
    for url in ("/catalog/%00/", "/catalog/Component/%00/", "/admin/catalog/entity/?q=%00", "/admin/auth/user/%00/change/"):
        check("get", url)
    assert not problems, "\n".join(problems)


def test_a_nul_page_parameter_names_the_parameter(signed_in):
    response = signed_in.get("/catalog/Component/?q=%00")
    assert response.status_code == 400
    assert b"q: must not contain NUL characters" in response.content and b"<h1>Bad request</h1>" in response.content


def test_a_cookie_holding_nul_is_ignored(db, client):
    client.cookies["sessionid"] = "abcdefgh\x00ijkl"
    response = client.get("/catalog/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")



@pytest.fixture
def failing_catalog_page(monkeypatch, settings):
    """/catalog/ raising what the test says, with DEBUG off as in production."""
    settings.DEBUG = False

    def arm(exc):
        def fail(user):
            raise exc
        monkeypatch.setattr("web.catalog_pages.blueprints.blueprints_visible_to", fail)
    return arm


@pytest.fixture
def signed_in(admin_user, client):
    client.force_login(admin_user)
    client.raise_request_exception = False
    return client


def test_a_page_failing_answers_a_friendly_500_page_naming_the_request_id(failing_catalog_page, signed_in):
    failing_catalog_page(RuntimeError("boom"))
    response = signed_in.get("/catalog/", HTTP_X_REQUEST_ID="req-9")
    assert response.status_code == 500 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "<h1>Something went wrong</h1>" in html and "<code>req-9</code>" in html and "portal.css" in html


def test_a_page_whose_database_is_down_answers_a_503_page_with_retry_after(failing_catalog_page, signed_in):
    failing_catalog_page(OperationalError("connection refused"))
    response = signed_in.get("/catalog/")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert "<h1>The portal is unavailable</h1>" in response.content.decode()


def test_a_page_whose_value_the_database_refuses_answers_a_400_page(failing_catalog_page, signed_in):
    failing_catalog_page(DataError("value out of range"))
    response = signed_in.get("/catalog/")
    assert response.status_code == 400 and "<h1>Bad request</h1>" in response.content.decode()


def test_an_unknown_page_answers_a_friendly_404_page(signed_in, settings):
    settings.DEBUG = False
    response = signed_in.get("/catalog/NoSuchBlueprint/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Page not found</h1>" in html and 'aria-label="Main"' in html  # with the navigation of a signed-in user


def test_a_request_django_refuses_before_any_view_is_a_400_envelope_or_page(admin_api, signed_in):
    """A Host outside ALLOWED_HOSTS (SuspiciousOperation, raised by a middleware): the envelope under /v1, a page
    elsewhere; neither repeats Django's message, which names the setting."""
    response = admin_api.get("/v1/blueprints", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": "bad_request", "message": "This request is malformed."}
    page = signed_in.get("/catalog/", HTTP_HOST="evil.example")
    assert page.status_code == 400 and "<h1>Bad request</h1>" in page.content.decode()
    assert "ALLOWED_HOSTS" not in page.content.decode()
