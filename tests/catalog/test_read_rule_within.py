"""A search narrowed to one blueprint carries only the part of the reader's read rule that restricts it
(EntityReadRule.within): none for a blueprint read in full, the ownership test for team-owned reading, nothing read
otherwise, with the same results as the whole rule."""
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.access import EVERY_ENTITY, NO_ENTITY, entity_read_rule
from catalog.models import Blueprint
from catalog.selectors.search import search_queryset
from tests.support.mirrors import mirror_catalog

pytestmark = pytest.mark.django_db
EVERYTHING = {"combinator": "and", "rules": []}


def user(email):
    return get_user_model().objects.get(email=email)


def search_sql(reader, blueprint):
    with CaptureQueriesContext(connection) as captured:
        found = sorted(e.identifier for e in search_queryset(EVERYTHING, user=reader, blueprint=blueprint))
    searches = [q["sql"] for q in captured.captured_queries if "catalog_entity" in q["sql"]]
    return found, searches


def test_a_blueprint_read_in_full_is_searched_without_a_permission_filter():
    mirror_catalog()
    found, searches = search_sql(user("dev@example.com"), "Region")
    assert found == ["eu", "us"]
    where = searches[0].split(" WHERE ", 1)[1].split(" ORDER BY ")[0]
    assert len(searches) == 1 and where.count("blueprint_id") == 1 and "EXISTS" not in where


def test_team_owned_reading_keeps_only_the_ownership_test():
    mirror_catalog()
    found, searches = search_sql(user("dev@example.com"), "TeamKey")
    assert found == ["mine"]
    where = searches[0].split(" WHERE ", 1)[1].split(" ORDER BY ")[0]
    assert len(searches) == 1 and "EXISTS" in where and where.count("blueprint_id") == 2  # = its own, IN (owned)


def test_an_unreadable_blueprint_is_searched_without_a_query():
    mirror_catalog()
    found, searches = search_sql(user("dev@example.com"), "Credential")
    assert found == [] and searches == []
    assert search_sql(user("sec@example.com"), "Credential")[0] == ["prod-cred"]


def test_within_narrows_the_whole_rule():
    mirror_catalog()
    ids = dict(Blueprint.objects.values_list("identifier", "id"))
    rule = entity_read_rule(user("dev@example.com"))
    assert rule.within(ids["Region"]) is EVERY_ENTITY and rule.within(ids["Credential"]) is NO_ENTITY
    owned = rule.within(ids["TeamKey"])
    assert owned.full == frozenset() and owned.owned == {ids["TeamKey"]} and owned.team_ids == rule.team_ids
    assert entity_read_rule(user("admin@example.com")).within(ids["Credential"]) is EVERY_ENTITY
