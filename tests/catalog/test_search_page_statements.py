"""POST /v1/blueprints/{bp}/entities/search in a bounded number of SQL statements (issue 16): the page and its entity
documents — relations, teams, mirror values, aggregations, scorecard standings — are one statement
(catalog/selectors/search_pages.py), whatever the page holds and whoever reads it, and the documents are the ones
`entities_json` writes, byte for byte."""
import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Blueprint
from catalog.selectors.blueprints import blueprint_definition
from catalog.selectors.search_pages import entity_document, search_page
from portal.errors import ValidationFailed
from tests.support.api import api_for
from tests.support.entity_documents import app_documents, parsed_once_each, varied_catalog

pytestmark = pytest.mark.django_db

# the page (which checks the kept blueprint definition and, once the process has seen it, the bearer token:
# portal/api/authentication.py); a member's read rule one more (before issue 16: 7 and 11 with mirrors)
MAX_STATEMENTS = {"admin@example.com": 1, "dev@example.com": 2}
READERS = ("admin@example.com", "dev@example.com", "pay@example.com", "nobody@example.com")
EVERY_APP = {"combinator": "and", "rules": []}
MIRROR_RULE = {"combinator": "or", "rules": [{"property": "language", "operator": "=", "value": "Go"},
                                             {"property": "libVersions", "operator": "=", "value": "1.0"}]}
RULE_SETS = (EVERY_APP, MIRROR_RULE, {"combinator": "and", "rules": [{"property": "cluster", "operator": "isEmpty"}]},
             {"combinator": "and", "rules": [{"property": "cluster", "operator": "=", "value": "c1"}]})


@pytest.fixture
def search_documents_catalog(db):
    varied_catalog()


def search_page_json(*args, **kwargs):
    """The page's documents as the API answers them (the statement's text), parsed: no object names a key twice."""
    text, next_cursor = search_page(*args, **kwargs)
    return parsed_once_each(text), next_cursor


def user(email):
    return get_user_model().objects.get(email=email)


def statements_of_search(email, body):
    api = api_for(user(email))
    url = "/v1/blueprints/App/entities/search"
    assert api.post(url, body, format="json").status_code == 200  # warm: what a long-running worker has cached
    with CaptureQueriesContext(connection) as captured:
        response = api.post(url, body, format="json")
    assert response.status_code == 200, response.content
    return [query["sql"] for query in captured.captured_queries], response.json()


@pytest.mark.parametrize("email", sorted(MAX_STATEMENTS))
def test_a_search_page_is_one_statement_for_its_documents(search_documents_catalog, email):
    statements, body = statements_of_search(email, {"query": EVERY_APP})
    full = next(entity for entity in body["entities"] if entity["identifier"] == "full")
    # the page holds what the statement had to gather: relations, teams, mirrors two hops away, scorecards, aggregates
    assert full["relations"]["libraries"] == ["l2", "l1", "l3"] and full["team"] == ["payments", "platform"]
    assert full["properties"]["clusterTitle"] == "Cluster one" and full["scorecards"]["readiness"]["level"] == "Gold"
    assert full["properties"]["libraryCount"] == 3 and full["properties"]["label"] == "full:Go"
    assert len(statements) <= MAX_STATEMENTS[email], "\n".join(statements)
    pages = [sql for sql in statements if "search_page" in sql]  # /* search_page */ WITH ...
    assert len(pages) == 1 and ") AS auth ON true" in pages[0] and not any("token_user" in sql for sql in statements)
    assert not any("catalog_relation" in sql for sql in statements if "search_page" not in sql)  # no other reads them


@pytest.mark.parametrize("email", sorted(MAX_STATEMENTS))
@pytest.mark.parametrize("rule_set", RULE_SETS)
def test_every_rule_set_is_searched_in_the_same_statements(search_documents_catalog, email, rule_set):
    """A relation rule: no more statements. A mirror rule (compiled for its reader, not kept) reads the definitions
    of the blueprints its chain passes through: one statement more."""
    statements, _ = statements_of_search(email, {"query": rule_set})
    assert len(statements) <= MAX_STATEMENTS[email] + (rule_set is MIRROR_RULE), "\n".join(statements)


@pytest.mark.parametrize("email", sorted(MAX_STATEMENTS))
def test_search_statements_do_not_grow_with_the_page(search_documents_catalog, email):
    one, body = statements_of_search(email, {"query": EVERY_APP, "limit": 1})
    every, all_body = statements_of_search(email, {"query": EVERY_APP, "limit": 100})
    assert len(body["entities"]) == 1 and len(all_body["entities"]) == 4
    assert len(one) == len(every)


# -- the page's documents are the documents `entities_json` builds -------------------------------------------------

OPTIONS = ({}, {"include": ["properties.libVersions", "team", "scorecards"]},
           {"exclude": ["properties.limits.nested", "relations"]})


@pytest.mark.parametrize("email", READERS)
def test_search_pages_give_the_documents_entities_json_gives(search_documents_catalog, email):
    reader, app = user(email), blueprint_definition("App")
    for options in OPTIONS:
        expected = app_documents(reader, **options)
        got, next_cursor = search_page_json(app, EVERY_APP, user=reader, limit=100, **options)
        # the same keys in the same order, all the way down: the API's bytes do not change
        assert json.dumps(got) == json.dumps(expected) and next_cursor is None
        assert expected or email == "nobody@example.com"


@pytest.mark.parametrize("email", READERS)
@pytest.mark.parametrize("rule_set", RULE_SETS)
def test_pages_of_one_concatenate_to_the_whole(search_documents_catalog, email, rule_set):
    """Page by page (limit 1, following `next`) gives the documents of one big page, in id order."""
    reader, app = user(email), blueprint_definition("App")
    whole, _ = search_page_json(app, rule_set, user=reader, limit=100)
    pages, cursor = [], None
    while True:
        page, cursor = search_page_json(app, rule_set, user=reader, limit=1, cursor=cursor)
        pages += page
        if cursor is None:
            break
    assert json.dumps(pages) == json.dumps(whole)
    expected = {document["identifier"] for document in app_documents(reader)}
    assert {document["identifier"] for document in whole} <= expected


def test_the_page_documents_differ_by_reader(search_documents_catalog):
    """So the comparisons above compare something: mirrors differ between readers, and exist at all."""
    app = blueprint_definition("App")

    def full(email):
        documents, _ = search_page_json(app, EVERY_APP, user=user(email), limit=10)
        return next(d for d in documents if d["identifier"] == "full")["properties"]

    admin, pay = full("admin@example.com"), full("pay@example.com")
    assert admin["libVersions"] == ["2.0", "1.0", None] and admin["regionName"] == "eu-west"
    assert admin["libTeams"] == [["payments"], ["payments", "platform"], None]
    assert pay["libVersions"] == [None, None, None] and pay["clusterTitle"] is None
    assert admin["huge"] == 98765432109876543210987654321 and admin["notes"] is None
    assert admin["libraryCount"] == 3 and pay["libraryCount"] == 3  # stored aggregates are the system's count


@pytest.mark.parametrize("cursor", ["", "bm90IGpzb24", "dHJ1ZQ", "OTIyMzM3MjAzNjg1NDc3NTgwOA", "LTE", "WyJ4Il0"])
def test_cursors_not_from_this_api_are_refused(search_documents_catalog, cursor):
    """`true`, 2**63, -1, a list: refused naming `from`, not a database error."""
    app = blueprint_definition("App")
    if cursor == "":
        assert search_page_json(app, EVERY_APP, user=user("admin@example.com"), limit=1, cursor=cursor)[0]
        return
    with pytest.raises(ValidationFailed) as raised:
        search_page_json(app, EVERY_APP, user=user("admin@example.com"), limit=1, cursor=cursor)
    assert raised.value.path == "from"


def test_a_kept_rule_set_is_compiled_again_when_a_blueprint_it_read_changes(search_documents_catalog):
    """`relatedTo` Cluster reads Cluster's definition: the page statement checks it is unchanged, and a page read
    with it changed is read again, compiled afresh (then kept again)."""
    from catalog.services.blueprints import blueprint_update
    from portal.actor import Actor

    related = {"combinator": "and", "rules": [{"operator": "relatedTo", "blueprint": "Cluster", "value": "c1",
                                               "direction": "downstream"}]}

    def pages():
        statements, body = statements_of_search("admin@example.com", {"query": related})
        return sum("page AS" in sql or "search_page" in sql for sql in statements), [e["identifier"] for e in body["entities"]]

    assert pages() == (1, ["full"])
    blueprint_update(actor=Actor.system(), blueprint=Blueprint.objects.get(identifier="Cluster"), partial=True,
                     data={"title": "Clusters"})
    api = api_for(user("admin@example.com"))
    with CaptureQueriesContext(connection) as captured:
        response = api.post("/v1/blueprints/App/entities/search", {"query": related}, format="json")
    assert [e["identifier"] for e in response.json()["entities"]] == ["full"]
    assert sum("page AS" in q["sql"] or "search_page" in q["sql"] for q in captured.captured_queries) == 2
    assert pages() == (1, ["full"])


def test_a_kept_scorecard_rule_follows_the_scorecards(search_documents_catalog):
    """Scorecards change without the blueprint's version: a kept `$scorecard.` rule set is not kept past them."""
    from catalog.services.scorecards import scorecard_update
    from portal.actor import Actor

    api = api_for(user("admin@example.com"))
    silver = {"query": {"combinator": "and", "rules": [
        {"property": "$scorecard.readiness", "operator": ">=", "value": "Silver"}]}}
    response = api.post("/v1/blueprints/App/entities/search", silver, format="json")
    assert [e["identifier"] for e in response.json()["entities"]] == ["full"]
    without_silver = {"identifier": "readiness", "title": "Readiness",
                      "levels": [{"title": "Basic", "color": "paleBlue"}, {"title": "Bronze", "color": "bronze"},
                                 {"title": "Gold", "color": "gold"}],
                      "rules": [{**rule, "level": "Gold" if rule["level"] == "Silver" else rule["level"]}
                                for rule in blueprint_definition("App").scorecards[0]["rules"]]}
    scorecard_update(actor=Actor.system(), blueprint=blueprint_definition("App"), identifier="readiness",
                     data=without_silver)
    response = api.post("/v1/blueprints/App/entities/search", silver, format="json")
    assert response.status_code == 422 and "not a level of scorecard" in response.json()["message"]


def test_a_stored_property_a_mirror_or_aggregation_also_names_is_written_once(search_documents_catalog):
    """A value stored under a key the blueprint now computes (a property dropped from the schema, then a mirror or
    an aggregation named like it): the answer's text names it once, where the stored key stood, with the computed
    value, as `entities_json` writes it."""
    from catalog.models import Entity

    Blueprint.objects.filter(identifier="App").update(calculation_properties={})  # the statement's text is answered
    app = blueprint_definition("App")
    Entity.objects.filter(identifier="full").update(
        properties={"clusterTitle": "stale", "language": "Go", "libraryCount": -1, "replicas": 3})
    reader = user("admin@example.com")
    documents, _ = search_page_json(app, EVERY_APP, user=reader, limit=100)
    full = next(d for d in documents if d["identifier"] == "full")["properties"]
    assert list(full)[:4] == ["language", "replicas", "clusterTitle", "libraryCount"]  # jsonb's order of the stored
    assert full["clusterTitle"] == "Cluster one" and full["libraryCount"] == 3
    for email in READERS:  # the statement's text, parsed, is entities_json's documents, whoever reads
        reader = user(email)
        assert json.dumps(search_page_json(app, EVERY_APP, user=reader, limit=100)[0]) == json.dumps(app_documents(reader))


def _plan_cache_mode():
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        return cursor.fetchone()[0]


def test_a_page_that_walks_relations_is_planned_once_and_finds_the_same(search_documents_catalog):
    """A relatedTo rule (a recursive walk PostgreSQL cannot estimate) runs under a generic plan, so its statement is
    not planned afresh at every execution; a rule whose plan depends on its values runs under PostgreSQL's choice
    again; both find what they found before, and the statements of a warm page do not grow."""
    app, reader = blueprint_definition("App"), user("admin@example.com")
    walk = {"combinator": "and", "rules": [{"operator": "relatedTo", "blueprint": "Region", "value": "eu",
                                            "direction": "downstream"}]}
    from catalog.selectors.search import search_queryset

    expected = set(search_queryset(walk, user=None, blueprint="App").values_list("identifier", flat=True))
    assert expected  # so the comparisons compare something
    for _ in range(7):  # past PostgreSQL's five custom plans of a prepared statement
        documents, _ = search_page_json(app, walk, user=reader, limit=100)
        assert {document["identifier"] for document in documents} == expected
        assert _plan_cache_mode() == "force_generic_plan"
        everything, _ = search_page_json(app, EVERY_APP, user=reader, limit=100)
        assert len(everything) == len(app_documents(reader)) and _plan_cache_mode() == "auto"
    statements, body = statements_of_search("admin@example.com", {"query": walk})
    assert {entity["identifier"] for entity in body["entities"]} == expected
    assert len(statements) <= MAX_STATEMENTS["admin@example.com"], "\n".join(statements)


def test_a_lookup_by_identifier_is_planned_once(search_documents_catalog):
    """A document read by its identifier (GET, the deployment report's answer) runs under a generic plan: its plan
    is one index probe whatever the identifier, and PostgreSQL, left to choose, kept planning it afresh at every
    execution (7.5 ms of planning for a running service with mirrors, 2 ms to run it)."""
    app, reader = blueprint_definition("App"), user("admin@example.com")
    identifiers = [document["identifier"] for document in app_documents(reader)]
    search_page_json(app, EVERY_APP, user=reader, limit=100)  # a page under PostgreSQL's choice first
    assert _plan_cache_mode() == "auto"
    for identifier in identifiers * 3:  # past PostgreSQL's five custom plans
        assert json.loads(entity_document("App", identifier, user=reader))["identifier"] == identifier
        assert _plan_cache_mode() == "force_generic_plan"


def test_the_page_condition_does_not_filter_the_blueprint_twice(search_documents_catalog):
    """The statement keeps the page to its blueprint; the rule set's own `blueprint_id` filter would only skew the
    planner's estimate of the rows matching."""
    from catalog.selectors.search import search_condition_sql

    app = blueprint_definition("App")
    rule_set = {"combinator": "and", "rules": [{"property": "cluster", "operator": "=", "value": "c1"},
                                               {"property": "language", "operator": "=", "value": "Go"}]}
    condition = search_condition_sql(rule_set, user=user("admin@example.com"), blueprint=app, alias="e")
    assert 'e."blueprint_id"' not in condition.text and 'e."properties"' in condition.text, condition.text
    documents, _ = search_page_json(app, rule_set, user=user("admin@example.com"), limit=100)
    expected = [d["identifier"] for d in app_documents(user("admin@example.com"))
                if d["relations"].get("cluster") == "c1" and d["properties"].get("language") == "Go"]
    assert [d["identifier"] for d in documents] == expected and expected
