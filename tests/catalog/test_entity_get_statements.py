"""GET /v1/blueprints/{bp}/entities/{id} in a bounded number of SQL statements (issue 16): the entity document —
relations, teams, mirror values, scorecard standings — is one statement, which also checks the bearer token (once
the process has seen it: portal/api/authentication.py), whatever the entity relates to and whoever reads it."""
import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.selectors.entities import entities_json
from catalog.selectors.search_pages import entity_document
from portal.errors import NotFound
from tests.support.api import api_for
from tests.support.entity_documents import APPS, parsed_once_each, varied_catalog

pytestmark = pytest.mark.django_db

MAX_STATEMENTS = {"admin@example.com": 1, "dev@example.com": 2}  # before issue 16: 17 and 21


@pytest.fixture
def documents_catalog(db):
    varied_catalog()


def entity_json_get(*args, **kwargs):
    """The document as the API answers it (the statement's text), parsed: no object names a key twice."""
    return parsed_once_each(entity_document(*args, **kwargs))


def statements_of_get(email, identifier):
    api = api_for(get_user_model().objects.get(email=email))
    url = f"/v1/blueprints/App/entities/{identifier}"
    assert api.get(url).status_code == 200  # warm: what a long-running worker has cached (content types)
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url)
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries], response.json()["entity"]


@pytest.mark.parametrize("email", sorted(MAX_STATEMENTS))
def test_entity_get_is_one_statement_for_the_document(documents_catalog, email):
    statements, entity = statements_of_get(email, "full")
    # the document holds what the statement had to gather: relations, teams, mirrors two hops away, scorecards
    assert entity["relations"]["libraries"] == ["l2", "l1", "l3"] and entity["team"] == ["payments", "platform"]
    assert entity["properties"]["clusterTitle"] == "Cluster one" and entity["scorecards"]["readiness"]["level"] == "Gold"
    assert len(statements) <= MAX_STATEMENTS[email], "\n".join(statements)
    documents = [sql for sql in statements if "search_page" in sql]
    assert len(documents) == 1 and ") AS auth ON true" in documents[0]  # the token is checked by the same statement
    assert not any("token_user" in sql for sql in statements)


def test_entity_get_statements_do_not_grow_with_relations(documents_catalog):
    many, _ = statements_of_get("dev@example.com", "full")
    none, _ = statements_of_get("dev@example.com", "bare")
    assert len(many) == len(none)


# -- the one-statement document is the document `entities_json` builds --------------------------------------------

READERS = ("admin@example.com", "dev@example.com", "pay@example.com", "nobody@example.com")


def _python_document(user, identifier, **options):
    from catalog.models import Entity

    entity = Entity.objects.select_related("blueprint").get(blueprint__identifier="App", identifier=identifier)
    return entities_json([entity], user=user, **options)[0]


@pytest.mark.parametrize("email", READERS)
@pytest.mark.parametrize("identifier", APPS)
def test_both_builders_give_the_same_document(documents_catalog, email, identifier):
    user = get_user_model().objects.get(email=email)
    for options in ({}, {"calculated": False}, {"include": ["properties.libVersions", "team"], "exclude": []},
                    {"exclude": ["properties.limits.nested", "relations"]}):
        expected = _python_document(user, identifier, **options)
        got = entity_json_get("App", identifier, user=get_user_model().objects.get(email=email), **options)
        # the same keys in the same order, all the way down: the API's bytes do not change
        assert json.dumps(got) == json.dumps(expected)


def test_the_documents_differ_by_reader(documents_catalog):
    """So the comparison above compares something: mirrors differ between readers, and exist at all."""
    def properties(email):
        return entity_json_get("App", "full", user=get_user_model().objects.get(email=email))["properties"]

    admin, dev, pay = properties("admin@example.com"), properties("dev@example.com"), properties("pay@example.com")
    assert admin["libVersions"] == ["2.0", "1.0", None] and admin["regionName"] == "eu-west"
    assert admin["libRegions"] == ["Zürich ☃ 東京", "eu-west"]  # l2 has no home: nothing beyond it
    assert dev["libVersions"] == ["2.0", "1.0", None] and dev["regionName"] == "eu-west"
    assert pay["libVersions"] == [None, None, None] and pay["clusterTitle"] is None and pay["regionName"] is None
    assert admin["libTeams"] == [["payments"], ["payments", "platform"], None]
    assert admin["clusterBlueprint"] == "Cluster" and admin["clusterIcon"] == "Cluster" and admin["clusterId"] == "c1"
    assert admin["libCreated"][0].endswith("Z") and admin["spareName"] is None


@pytest.mark.parametrize("email", READERS)
def test_an_unreadable_or_missing_entity_is_not_found(documents_catalog, email):
    user = get_user_model().objects.get(email=email)
    with pytest.raises(NotFound, match="Entity 'missing' of blueprint 'App'"):
        entity_json_get("App", "missing", user=user)
    with pytest.raises(NotFound, match="Blueprint 'Nope'"):
        entity_json_get("Nope", "full", user=user)


@pytest.mark.parametrize("identifier", ["x" * 5000, "../../etc/passwd", "a%sb%%s", "{readable_e}", "☃ 東京", "1e400"])
def test_odd_identifiers_are_not_found(documents_catalog, identifier):
    from urllib.parse import quote

    api = api_for(get_user_model().objects.get(email="dev@example.com"))
    response = api.get(f"/v1/blueprints/App/entities/{quote(identifier, safe='')}")
    assert response.status_code == 404 and response.json()["ok"] is False
    response = api.get(f"/v1/blueprints/{quote(identifier, safe='')}/entities/full")
    assert response.status_code == 404


def test_a_changed_blueprint_is_read_afresh_whoever_changed_it(documents_catalog):
    """The blueprint's definition is kept per process and checked by the document's own statement: a change made
    after it was kept shows in the next read, through the services (a new version) or behind them (the same
    version, another column: a scorecard, a property renamed by hand), and a deleted blueprint is 404."""
    from catalog.models import Blueprint
    from catalog.services.blueprints import blueprint_update
    from portal.actor import Actor

    api = api_for(get_user_model().objects.get(email="admin@example.com"))
    url = "/v1/blueprints/App/entities/full"
    assert "owner" not in api.get(url).json()["entity"]["properties"]
    blueprint_update(actor=Actor.system(), blueprint=Blueprint.objects.get(identifier="App"), partial=True,
                     data={"schema": {"properties": {**Blueprint.objects.get(identifier="App").schema["properties"],
                                                     "owner": {"type": "string"}}}})
    assert api.get(url).json()["entity"]["properties"]["owner"] is None
    Blueprint.objects.filter(identifier="App").update(mirror_properties={}, aggregation_properties={})
    statements, entity = statements_of_get("admin@example.com", "full")
    assert "clusterTitle" not in entity["properties"] and "libraryCount" not in entity["properties"]
    assert len(statements) <= MAX_STATEMENTS["admin@example.com"]  # read afresh once, then kept again
    Blueprint.objects.filter(identifier="App").update(scorecards=[])
    assert "scorecards" not in api.get(url).json()["entity"]
    from catalog.models import Entity, Relation, ScorecardResult

    ScorecardResult.objects.all().delete()
    Relation.objects.all().delete()
    Entity.objects.filter(blueprint__identifier="App").delete()
    Blueprint.objects.filter(identifier="App").delete()
    response = api.get(url)
    assert response.status_code == 404 and "Blueprint 'App'" in response.json()["message"]


def test_a_search_page_reads_a_changed_blueprint_afresh(documents_catalog):
    from catalog.models import Blueprint

    api = api_for(get_user_model().objects.get(email="admin@example.com"))
    url = "/v1/blueprints/App/entities/search"
    first = api.post(url, {"limit": 10}, format="json").json()["entities"]
    assert len(first) == len(APPS) and all("libraryCount" in document["properties"] for document in first)
    Blueprint.objects.filter(identifier="App").update(aggregation_properties={}, calculation_properties={})
    again = api.post(url, {"limit": 10}, format="json").json()["entities"]
    assert [d["identifier"] for d in again] == [d["identifier"] for d in first]
    assert not any("libraryCount" in document["properties"] or "label" in document["properties"] for document in again)


def test_a_rule_only_the_changed_blueprint_accepts_is_not_refused(documents_catalog):
    """A rule naming what the kept definition lacks (a scorecard added since, by another process) is compiled again
    over the blueprint as it is now, not refused; one neither knows is still refused, naming the field."""
    from catalog.models import Blueprint

    api = api_for(get_user_model().objects.get(email="admin@example.com"))
    url = "/v1/blueprints/App/entities/search"
    assert api.post(url, {"limit": 1}, format="json").status_code == 200  # the definition is kept
    app = Blueprint.objects.get(identifier="App")
    Blueprint.objects.filter(pk=app.pk).update(scorecards=[{**app.scorecards[0], "identifier": "fresh"}])
    rule = {"property": "$scorecard.fresh", "operator": "=", "value": "Gold"}
    response = api.post(url, {"query": {"combinator": "and", "rules": [rule]}}, format="json")
    assert response.status_code == 200, response.json()
    rule = {"property": "$scorecard.stale", "operator": "=", "value": "Gold"}
    response = api.post(url, {"query": {"combinator": "and", "rules": [rule]}}, format="json")
    assert response.status_code == 422 and response.json()["message"].startswith("query.rules[0].property: ")
