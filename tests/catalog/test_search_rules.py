"""The rule compiler (catalog/selectors/search.py): semantics of every operator, scoping, relations,
mirrors, context values, errors and permission filtering — against the real database."""
from datetime import timedelta, timezone as dt_timezone

import pytest
from django.db import connection
from django.db.models import Exists, OuterRef
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Blueprint, Entity
from catalog.selectors.search import rules_validate, search_compile, search_queryset
from catalog.services.entities import entity_write_one
from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor
from portal.errors import ValidationFailed
from tests.factories import BlueprintFactory, EntityFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system()
NOW = None  # set by the catalog fixture: the moment the dates below are relative to


def iso(moment):
    return moment.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z")


def bp(data):
    return BlueprintFactory(**data)


def entity(blueprint, identifier, **data):
    return EntityFactory(blueprint=blueprint, identifier=identifier, **data)


@pytest.fixture
def rules_catalog(db):
    global NOW
    NOW = now = timezone.now()
    for name in ("Platform", "Payments"):
        TeamFactory(name=name)
    bp({"identifier": "Domain", "title": "Domain",
        "schema": {"properties": {"region": {"type": "string"}}}})
    bp({"identifier": "System", "title": "System", "schema": {"properties": {}},
        "relations": {"domain": {"target": "Domain", "required": True, "many": False}}})
    bp({"identifier": "Service", "title": "Service",
        "schema": {"properties": {
            "language": {"type": "string"},
            "replicas": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "deployedAt": {"type": "string", "format": "date-time"},
            "ttl": {"type": "string", "format": "timer"},
            "public": {"type": "boolean"},
            "meta": {"type": "object"},
            "owner": {"type": "string", "format": "user"},
        }},
        "relations": {"system": {"target": "System", "required": False, "many": False},
                      "dependsOn": {"target": "Service", "required": False, "many": True}},
        "mirrorProperties": {"domainName": {"path": "system.domain.$title"},
                             "domainRegion": {"path": "system.domain.region"},
                             "dependencyLanguages": {"path": "dependsOn.language"}},
        "calculationProperties": {"shout": {"calculation": ".title | ascii_upcase", "type": "string"}}})
    bp({"identifier": "Library", "title": "Library",
        "schema": {"properties": {"language": {"type": "string"}, "stars": {"type": "number"}}}})

    entity("Domain", "Orders", title="Orders", properties={"region": "eu-west"})
    entity("Domain", "Billing", title="Billing", properties={"region": "us-east"})
    entity("System", "Cart", relations={"domain": "Orders"})
    entity("System", "Ledger", relations={"domain": "Billing"})
    entity("Service", "cart-api", title="Cart API", team=["Platform"], relations={"system": "Cart"}, properties={
        "language": "Python", "replicas": 3, "tags": ["web", "api"], "deployedAt": iso(now - timedelta(days=2)),
        "ttl": iso(now - timedelta(hours=1)), "public": True, "meta": {"tier": 1}, "owner": "dev@example.com"})
    entity("Service", "cart-worker", title="Cart worker", team=["Payments"],
           relations={"system": "Cart", "dependsOn": ["cart-api"]}, properties={
               "language": "Go", "replicas": 1, "tags": ["worker"], "deployedAt": iso(now - timedelta(days=40)),
               "ttl": iso(now + timedelta(days=1)), "public": False})
    entity("Service", "ledger-api", title="Ledger API", relations={"system": "Ledger", "dependsOn": ["cart-worker"]},
           properties={"language": "python", "replicas": 10.5, "tags": [], "deployedAt": iso(now - timedelta(hours=1)),
                       "owner": "other@example.com"})
    # A date stored with a +02:00 offset: compared as an instant, not as a string.
    odd_moment = (now - timedelta(days=10)).astimezone(dt_timezone(timedelta(hours=2)))
    entity("Service", "odd", title="50%_off\\deal", properties={"language": "", "deployedAt": odd_moment.isoformat()})
    entity("Service", "next-svc", title="50ab off", properties={"language": "Go", "deployedAt": iso(now + timedelta(days=1))})
    entity("Service", "bare", title="bare")
    entity("Library", "lib-a", properties={"language": "Go", "stars": 5})
    entity("Library", "lib-b", properties={"language": "Rust"})


DATES = {  # what the catalog fixture stores in deployedAt, as instants
    "cart-api": lambda now: now - timedelta(days=2),
    "cart-worker": lambda now: now - timedelta(days=40),
    "ledger-api": lambda now: now - timedelta(hours=1),
    "odd": lambda now: now - timedelta(days=10),
    "next-svc": lambda now: now + timedelta(days=1),
}
SERVICES = {"cart-api", "cart-worker", "ledger-api", "odd", "next-svc", "bare"}


def find(rules, combinator="and", user=None, blueprint="Service", **kwargs):
    rule_set = rules if isinstance(rules, dict) else {"combinator": combinator, "rules": rules}
    scope = Blueprint.objects.get(identifier=blueprint) if blueprint else None
    return set(search_queryset(rule_set, user=user, blueprint=scope, **kwargs).values_list("identifier", flat=True))


def rule(prop, operator, value=None):
    data = {"property": prop, "operator": operator}
    if value is not None:
        data["value"] = value
    return data


def services_except(*names):
    return SERVICES - set(names)


# -- equality, lists, strings ------------------------------------------------------------------------


@pytest.mark.parametrize("operator, value, expected", [
    ("=", "python", {"ledger-api"}),  # case-sensitive
    ("=", "Python", {"cart-api"}),
    ("!=", "Go", services_except("cart-worker", "next-svc")),  # missing language (bare) is "not equal"
    ("in", ["Go", "Python"], {"cart-api", "cart-worker", "next-svc"}),
    ("notIn", ["Go", "Python"], {"ledger-api", "odd", "bare"}),
    ("contains", "YTH", {"cart-api", "ledger-api"}),  # case-insensitive
    ("doesNotContains", "yth", services_except("cart-api", "ledger-api")),
    ("doesNotContain", "yth", services_except("cart-api", "ledger-api")),  # Port's own spelling
    ("beginsWith", "g", {"cart-worker", "next-svc"}),
    ("doesNotBeginsWith", "g", services_except("cart-worker", "next-svc")),
    ("endsWith", "ON", {"cart-api", "ledger-api"}),
    ("doesNotEndsWith", "on", services_except("cart-api", "ledger-api")),
    ("isEmpty", None, {"odd", "bare"}),  # "" and missing
    ("isNotEmpty", None, {"cart-api", "cart-worker", "ledger-api", "next-svc"}),
])
def test_string_operators(rules_catalog, operator, value, expected):
    assert find([rule("language", operator, value)]) == expected


@pytest.mark.parametrize("operator, value, expected", [
    ("=", 3, {"cart-api"}),
    ("=", 3.0, {"cart-api"}),  # numeric, not textual
    ("=", "3", {"cart-api"}),  # numeric strings are accepted
    ("!=", 3, services_except("cart-api")),
    ("in", [1, 10.5], {"cart-worker", "ledger-api"}),
    ("notIn", [1, 10.5], services_except("cart-worker", "ledger-api")),
    (">", 2, {"cart-api", "ledger-api"}),
    (">=", 3, {"cart-api", "ledger-api"}),
    ("<", 3, {"cart-worker"}),
    ("<=", 3, {"cart-worker", "cart-api"}),
    ("<", 1e9, {"cart-api", "cart-worker", "ledger-api"}),  # missing values never compare
    ("isEmpty", None, {"odd", "next-svc", "bare"}),
])
def test_number_operators(rules_catalog, operator, value, expected):
    assert find([rule("replicas", operator, value)]) == expected


@pytest.mark.parametrize("prop, operator, value, expected", [
    ("tags", "containsAny", ["api", "worker"], {"cart-api", "cart-worker"}),
    ("tags", "containsAny", "web", {"cart-api"}),
    ("tags", "=", ["web", "api"], {"cart-api"}),
    ("tags", "=", ["web"], set()),  # exact, not containment
    ("tags", "!=", ["web", "api"], services_except("cart-api")),
    ("tags", "isEmpty", None, services_except("cart-api", "cart-worker")),  # [] and missing
    ("tags", "isNotEmpty", None, {"cart-api", "cart-worker"}),
    ("public", "=", True, {"cart-api"}),
    ("public", "=", "false", {"cart-worker"}),
    ("public", "!=", True, services_except("cart-api")),
    ("meta", "=", {"tier": 1}, {"cart-api"}),
    ("meta", "=", {}, set()),
    ("meta", "isEmpty", None, services_except("cart-api")),
])
def test_array_boolean_object_operators(rules_catalog, prop, operator, value, expected):
    assert find([rule(prop, operator, value)]) == expected


# -- dates and timers ------------------------------------------------------------------------------


def dates_between(start, end, *, end_inclusive=True):
    return {name for name, moment in DATES.items()
            if start <= moment(NOW) and (moment(NOW) <= end if end_inclusive else moment(NOW) < end)}


def test_date_presets(rules_catalog):
    now = timezone.now()  # the compiler reads the clock a moment later; no stored date is that close to a bound
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    expected = {
        "today": dates_between(midnight, midnight + day, end_inclusive=False),
        "tomorrow": dates_between(midnight + day, midnight + 2 * day, end_inclusive=False),
        "yesterday": dates_between(midnight - day, midnight, end_inclusive=False),
        "lastDay": {"ledger-api"},
        "lastWeek": {"ledger-api", "cart-api"},
        "last2Weeks": {"ledger-api", "cart-api", "odd"},
        "lastMonth": {"ledger-api", "cart-api", "odd"},
        "last3Months": {"ledger-api", "cart-api", "odd", "cart-worker"},
        "last6Months": {"ledger-api", "cart-api", "odd", "cart-worker"},
        "last12Months": {"ledger-api", "cart-api", "odd", "cart-worker"},
    }
    assert expected["tomorrow"] == {"next-svc"}
    for preset, names in expected.items():
        assert find([rule("deployedAt", "between", {"preset": preset})]) == names, preset
        assert find([rule("deployedAt", "notBetween", {"preset": preset})]) == SERVICES - names, preset
    assert find([rule("deployedAt", "=", {"preset": "lastWeek"})]) == expected["lastWeek"]


def test_date_ranges_compare_instants(rules_catalog):
    assert find([rule("deployedAt", "between", {"from": iso(NOW - timedelta(days=3)), "to": iso(NOW)})]) == \
        {"cart-api", "ledger-api"}
    # Open end; a date-only `to` includes that whole day.
    assert find([rule("deployedAt", "between", {"to": (NOW - timedelta(days=2)).date().isoformat()})]) == \
        {"cart-api", "odd", "cart-worker"}
    # `odd` is stored as "...+02:00"; as a string it sorts after this UTC bound, as an instant before it.
    assert find([rule("deployedAt", "<", iso(NOW - timedelta(days=10) + timedelta(minutes=30))),
                 rule("deployedAt", ">", iso(NOW - timedelta(days=11)))]) == {"odd"}
    assert find([rule("deployedAt", ">=", iso(NOW))]) == {"next-svc"}
    assert find([rule("$createdAt", "between", {"preset": "lastDay"})]) == SERVICES
    assert find([rule("$updatedAt", ">", iso(NOW + timedelta(hours=1)))]) == set()


def test_timers(rules_catalog):
    assert find([rule("ttl", "isExpired")]) == {"cart-api"}
    assert find([rule("ttl", "isNotExpired")]) == services_except("cart-api")  # missing timers are not expired
    assert find([rule("ttl", "between", {"preset": "tomorrow"})]) == {"cart-worker"}


# -- meta-properties, scope, relations, mirrors --------------------------------------------------------


@pytest.mark.parametrize("rules, expected", [
    ([rule("$identifier", "beginsWith", "CART")], {"cart-api", "cart-worker"}),
    ([rule("$identifier", "in", ["bare", "odd", "nope"])], {"bare", "odd"}),
    ([rule("$title", "=", "Cart API")], {"cart-api"}),
    ([rule("$title", "=", "cart api")], set()),
    ([rule("$title", "contains", "50%_")], {"odd"}),  # % and _ are literal, not wildcards ("50ab off")
    ([rule("$title", "contains", "\\d")], {"odd"}),
    ([rule("$title", "doesNotContains", "api")], services_except("cart-api", "ledger-api")),
    ([rule("$team", "=", "Platform")], {"cart-api"}),
    ([rule("$team", "in", ["Platform", "Payments"])], {"cart-api", "cart-worker"}),
    ([rule("$team", "containsAny", ["Payments"])], {"cart-worker"}),
    ([rule("$team", "!=", "Platform")], services_except("cart-api")),
    ([rule("$team", "isEmpty")], services_except("cart-api", "cart-worker")),
    ([rule("$createdBy", "=", "system")], SERVICES),
])
def test_meta_properties(rules_catalog, rules, expected):
    assert find(rules) == expected


def test_blueprint_rules_scope_the_search(rules_catalog):
    assert find([rule("$blueprint", "=", "Library")], blueprint=None) == {"lib-a", "lib-b"}
    assert find([rule("$blueprint", "in", ["Service", "Library"]), rule("language", "=", "Go")], blueprint=None) == \
        {"cart-worker", "next-svc", "lib-a"}
    # Without $blueprint, a property rule applies to the blueprints defining it — negations too: no Domain,
    # System entities.
    assert find([rule("language", "!=", "Go")], blueprint=None) == services_except("cart-worker", "next-svc") | {"lib-b"}
    # `stars` is Library's only: it validates because an `or` branch narrows to Library.
    assert find({"combinator": "or", "rules": [
        {"combinator": "and", "rules": [rule("$blueprint", "=", "Library"), rule("stars", ">", 1)]},
        {"combinator": "and", "rules": [rule("$blueprint", "=", "Service"), rule("replicas", ">", 5)]},
    ]}, blueprint=None) == {"lib-a", "ledger-api"}
    compiled = search_compile({"combinator": "and", "rules": [rule("$blueprint", "notIn", ["Domain", "System"])]},
                              user=None)
    assert compiled.blueprints == ["Library", "Service"]


@pytest.mark.parametrize("rules, expected", [
    ([rule("system", "=", "Cart")], {"cart-api", "cart-worker"}),
    ([rule("system", "in", ["Cart", "Ledger"])], {"cart-api", "cart-worker", "ledger-api"}),
    ([rule("system", "!=", "Cart")], services_except("cart-api", "cart-worker")),
    ([rule("system", "isEmpty")], {"odd", "next-svc", "bare"}),
    ([rule("dependsOn", "containsAny", ["cart-api", "nope"])], {"cart-worker"}),
    ([rule("dependsOn", "isNotEmpty")], {"cart-worker", "ledger-api"}),
])
def test_relation_id_rules(rules_catalog, rules, expected):
    assert find(rules) == expected


@pytest.mark.parametrize("rules, expected", [
    ([rule("domainName", "=", "Orders")], {"cart-api", "cart-worker"}),
    ([rule("domainName", "!=", "Orders")], services_except("cart-api", "cart-worker")),
    ([rule("domainName", "contains", "BILL")], {"ledger-api"}),
    ([rule("domainRegion", "beginsWith", "eu")], {"cart-api", "cart-worker"}),
    ([rule("domainRegion", "isEmpty")], {"odd", "next-svc", "bare"}),
    ([rule("dependencyLanguages", "=", "Go")], {"ledger-api"}),
    ([rule("dependencyLanguages", "containsAny", ["Python", "Rust"])], {"cart-worker"}),
])
def test_mirror_properties(rules_catalog, rules, expected):
    assert find(rules) == expected


def test_nested_combinators(rules_catalog):
    rules = {"combinator": "or", "rules": [
        {"combinator": "and", "rules": [rule("language", "=", "Go"), rule("replicas", "=", 1)]},
        {"combinator": "and", "rules": [
            rule("$title", "contains", "ledger"),
            {"combinator": "or", "rules": [rule("replicas", ">", 100), rule("tags", "isEmpty")]},
        ]},
    ]}
    assert find(rules) == {"cart-worker", "ledger-api"}
    assert find({"combinator": "and", "rules": []}) == SERVICES
    assert find({"combinator": "or", "rules": []}) == set()


@pytest.fixture
def graph(db):
    """Components depend on components (`uses`, optional) and on a domain (`domain`, required):
    c1 → c2 → c3 → c1 is a cycle, c4 → c3, c1/c2 in domain D, c3/c4 in domain D2."""
    bp({"identifier": "Area", "title": "Area", "schema": {"properties": {}}})
    bp({"identifier": "Component", "title": "Component", "schema": {"properties": {}},
        "relations": {"domain": {"target": "Area", "required": True},
                      "uses": {"target": "Component", "many": True}}})
    entity("Area", "D")
    entity("Area", "D2")
    entity("Component", "c1", relations={"domain": "D"})
    entity("Component", "c2", relations={"domain": "D"})
    entity("Component", "c3", relations={"domain": "D2", "uses": ["c1"]})
    entity_write_one(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="Component"), mode="patch",
                     identifier="c1", data={"relations": {"uses": ["c2"]}})
    entity_write_one(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="Component"), mode="patch",
                     identifier="c2", data={"relations": {"uses": ["c3"]}})
    entity("Component", "c4", relations={"domain": "D2", "uses": ["c3"]})


def related(blueprint, value, direction=None, required=None):
    data = {"operator": "relatedTo", "blueprint": blueprint, "value": value}
    if direction:
        data["direction"] = direction
    if required is not None:
        data["required"] = required
    return data


@pytest.mark.parametrize("relation_rule, expected", [
    # upstream: what the source depends on, at any depth (c4 → c3 → c1 → c2 is three hops past c3)
    (related("Component", "c4"), {"c3", "c1", "c2", "D", "D2"}),
    (related("Component", "c1", "upstream"), {"c2", "c3", "c1", "D", "D2"}),  # c1 reaches itself via the cycle
    (related("Component", "c4", required=True), {"D2"}),
    (related("Component", "c4", required=False), {"c3", "c1", "c2"}),
    # downstream: what depends on the source
    (related("Area", "D", "downstream"), {"c1", "c2", "c3", "c4"}),
    (related("Area", "D", "downstream", required=True), {"c1", "c2"}),
    (related("Area", "D", "downstream", required=False), set()),
    (related("Component", ["c4", "nope"], "downstream"), set()),
    (related("Component", ["c3"], "downstream", required=False), {"c2", "c4", "c1", "c3"}),
    (related("Area", [], "downstream"), set()),
])
def test_related_to_walks_the_graph_and_terminates_on_cycles(graph, relation_rule, expected):
    assert find([relation_rule], blueprint=None) == expected


def test_related_to_combines_with_other_rules(graph):
    rules = [related("Area", "D", "downstream"), rule("$blueprint", "=", "Component"), rule("$identifier", "!=", "c1")]
    assert find(rules, blueprint=None) == {"c2", "c3", "c4"}


# -- context values, permissions -----------------------------------------------------------------------


def test_context_values(rules_catalog):
    member = UserFactory(email="dev@example.com", teams=["Platform"])
    assert find([rule("owner", "=", {"context": "user", "property": "$identifier"})], user=member) == {"cart-api"}
    assert find([rule("owner", "!=", {"context": "user", "property": "$identifier"})], user=member) == \
        services_except("cart-api")
    assert find([rule("$team", "in", {"context": "userTeams", "property": "$identifier"})], user=member) == {"cart-api"}
    assert find([rule("$team", "=", {"context": "user", "property": "$team"})], user=member) == {"cart-api"}
    loner = UserFactory(email="loner@example.com")
    assert find([rule("$team", "in", {"context": "userTeams"})], user=loner) == set()
    assert find([rule("$team", "notIn", {"context": "userTeams"})], user=loner) == SERVICES
    # No caller (system use): the context is empty.
    assert find([rule("owner", "=", {"context": "user", "property": "$identifier"})]) == set()


def test_member_without_read_grant_gets_nothing_from_that_blueprint(rules_catalog):
    member = UserFactory(email="dev@example.com", teams=["Platform"])
    everything = {"combinator": "and", "rules": []}
    assert find(everything, user=member) == SERVICES
    blueprint_permissions_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="Service"),
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": False}}})
    member = UserFactory(email="other@example.com", teams=["Platform"])  # fresh object: access is cached per user object
    assert find(everything, user=member) == set()
    assert find([rule("language", "=", "Go")], user=member, blueprint=None) == {"lib-a"}


def test_owned_by_team_read_grant(rules_catalog):
    blueprint_permissions_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="Service"),
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    member = UserFactory(email="dev@example.com", teams=["Platform"])
    assert find({"combinator": "and", "rules": []}, user=member) == {"cart-api"}
    assert find([rule("language", "!=", "Go")], user=member) == {"cart-api"}
    admin = UserFactory(email="root@example.com", admin=True)
    assert find([rule("language", "!=", "Go")], user=admin) == services_except("cart-worker", "next-svc")


# -- one query, composable ------------------------------------------------------------------------------


def test_a_search_is_one_sql_query(rules_catalog):
    member = UserFactory(email="dev@example.com", teams=["Platform"])
    rule_set = {"combinator": "and", "rules": [
        rule("language", "in", ["Python", "Go"]),
        rule("domainName", "=", "Orders"),
        {"combinator": "or", "rules": [
            rule("$team", "in", {"context": "userTeams"}),
            related("Service", "cart-api", "downstream"),
            rule("deployedAt", "between", {"preset": "last12Months"}),
        ]},
        rule("$title", "contains", "cart"),
    ]}
    queryset = search_queryset(rule_set, user=member, blueprint=Blueprint.objects.get(identifier="Service"))
    with CaptureQueriesContext(connection) as ctx:
        found = set(queryset.values_list("identifier", flat=True))
    assert found == {"cart-api", "cart-worker"}
    assert len(ctx.captured_queries) == 1, [q["sql"] for q in ctx.captured_queries]


def test_compiled_search_composes_as_a_subquery(rules_catalog):
    searched = search_queryset({"combinator": "and", "rules": [rule("language", "=", "Go"), rule("system", "=", "Cart")]},
                               user=None, blueprint=Blueprint.objects.get(identifier="Service"))
    outer = Entity.objects.filter(Exists(searched.filter(pk=OuterRef("pk"))))
    assert set(outer.values_list("identifier", flat=True)) == {"cart-worker"}
    assert set(Entity.objects.filter(id__in=searched.values("id")).values_list("identifier", flat=True)) == {"cart-worker"}
    narrowed = search_queryset({"combinator": "and", "rules": [rule("$team", "=", "Payments")]}, user=None,
                               base=Entity.objects.filter(identifier__startswith="cart"))
    assert set(narrowed.values_list("identifier", flat=True)) == {"cart-worker"}


# -- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule_set, path", [
    ({"combinator": "xor", "rules": []}, "combinator"),
    ({"combinator": "and"}, "rules"),
    ({"combinator": "and", "rules": ["nope"]}, "rules[0]"),
    ({"combinator": "and", "rules": [rule("language", "=", "Go"), rule("$title", "=", "x"), rule("nope", "=", 1)]},
     "rules[2].property"),
    ({"combinator": "and", "rules": [{"combinator": "or", "rules": [rule("language", "=", "Go"),
                                                                    rule("language", "equals", "Go")]}]},
     "rules[0].rules[1].operator"),
    ({"combinator": "and", "rules": [rule("shout", "=", "X")]}, "rules[0].property"),
    ({"combinator": "and", "rules": [{"operator": "=", "value": 1}]}, "rules[0].property"),
    ({"combinator": "and", "rules": [rule("language", "=")]}, "rules[0].value"),
    ({"combinator": "and", "rules": [rule("replicas", "=", "many")]}, "rules[0].value"),
    ({"combinator": "and", "rules": [rule("replicas", "contains", "1")]}, "rules[0].operator"),
    ({"combinator": "and", "rules": [rule("language", ">", 1)]}, "rules[0].operator"),
    ({"combinator": "and", "rules": [rule("language", "isExpired")]}, "rules[0].operator"),
    ({"combinator": "and", "rules": [rule("language", "in", ["Go", 1])]}, "rules[0].value[1]"),
    ({"combinator": "and", "rules": [rule("deployedAt", "between", {"from": "yesterday-ish"})]}, "rules[0].value.from"),
    ({"combinator": "and", "rules": [rule("deployedAt", "between", {"preset": "lastCentury"})]}, "rules[0].value.preset"),
    ({"combinator": "and", "rules": [rule("deployedAt", "between", {"from": "2024-02-01", "to": "2024-01-01"})]},
     "rules[0].value.from"),
    ({"combinator": "and", "rules": [rule("deployedAt", ">", "2024-13-45")]}, "rules[0].value"),
    ({"combinator": "and", "rules": [rule("$nope", "=", "x")]}, "rules[0].property"),
    ({"combinator": "and", "rules": [rule("$blueprint", "=", "Nope")]}, "rules[0].value"),
    ({"combinator": "and", "rules": [rule("$team", "contains", "x")]}, "rules[0].operator"),
    ({"combinator": "and", "rules": [rule("system", "contains", "x")]}, "rules[0].operator"),
    ({"combinator": "and", "rules": [rule("owner", "=", {"context": "boss"})]}, "rules[0].value.context"),
    ({"combinator": "and", "rules": [rule("owner", "=", {"context": "user", "property": "$shoe"})]},
     "rules[0].value.property"),
    ({"combinator": "and", "rules": [related("Nope", "x")]}, "rules[0].blueprint"),
    ({"combinator": "and", "rules": [related("Service", "x", "sideways")]}, "rules[0].direction"),
    ({"combinator": "and", "rules": [{**related("Service", "x"), "required": "yes"}]}, "rules[0].required"),
])
def test_errors_name_the_path(rules_catalog, rule_set, path):
    with pytest.raises(ValidationFailed) as failure:
        find(rule_set)
    assert failure.value.message.startswith(f"{path}: "), failure.value.message
    with pytest.raises(ValidationFailed) as failure:
        find(rule_set, path="query")
    assert failure.value.message.startswith(f"query.{path}: "), failure.value.message


def test_calculation_properties_cannot_be_searched(rules_catalog):
    with pytest.raises(ValidationFailed, match="calculation property of blueprint 'Service'.*cannot be searched"):
        find([rule("shout", "=", "X")])


def test_bounds_on_nesting_and_rule_count(rules_catalog):
    nested = rule("language", "=", "Go")
    for _ in range(20):
        nested = {"combinator": "and", "rules": [nested]}
    assert find(nested) == {"cart-worker", "next-svc"}  # 20 levels
    with pytest.raises(ValidationFailed, match="deeper than 20 levels"):
        find({"combinator": "and", "rules": [nested]})
    with pytest.raises(ValidationFailed, match="at most 500 rules"):
        find([rule("language", "=", "Go")] * 501)


def test_rules_validate_checks_without_searching(rules_catalog):
    service = Blueprint.objects.get(identifier="Service")
    good = {"combinator": "and", "rules": [rule("language", "=", "Go"), rule("domainName", "=", "Orders"),
                                           rule("owner", "=", {"context": "user", "property": "$identifier"}),
                                           related("Domain", "Orders", "downstream")]}
    with CaptureQueriesContext(connection) as ctx:
        rules_validate(good, blueprints=[service])
    assert not any("catalog_entity" in q["sql"] for q in ctx.captured_queries)
    with pytest.raises(ValidationFailed) as failure:
        rules_validate({"combinator": "and", "rules": [rule("stars", ">", 1)]}, blueprints=[service], path="condition")
    assert failure.value.message.startswith("condition.rules[0].property: ")
    rules_validate({"combinator": "and", "rules": [rule("stars", ">", 1)]}, blueprints=["Library"])
