"""Date-time rules decide canonical stored text without casting it (catalog/selectors/search.py `_canonical_first`):
the result is the one the guarded cast gives, for canonical values at and around the bounds (bounds finer than a
millisecond included), for values stored in another shape, and for text that only looks like a date."""
import json

import pytest

from catalog.models import Entity
from catalog.selectors.search import search_queryset
from catalog.selectors.blueprints import blueprint_definition
from catalog.selectors.search_pages import search_page
from tests.factories import BlueprintFactory, EntityFactory, UserFactory

pytestmark = pytest.mark.django_db

STORED = {
    "at-low": "2024-06-01T12:00:00.000Z",
    "before-low": "2024-06-01T11:59:59.999Z",
    "offset": "2024-06-01T14:00:00+02:00",  # 12:00Z in another shape: written before values were canonical
    "no-millis": "2024-06-01T18:00:00Z",
    "looks-like": "abcd-ef-ghTij:kl:mn.opqZ",  # the canonical shape, not a date: no date at all
    "at-high": "2024-06-02T00:00:00.000Z",
    "after-high": "2024-06-02T00:00:00.001Z",
}
EVERY = set(STORED) | {"number", "missing"}


@pytest.fixture
def dated_catalog(db):
    BlueprintFactory(identifier="Release", schema={"properties": {
        "shippedAt": {"type": "string", "format": "date-time"}, "size": {"type": "number"}}})
    for identifier in STORED:
        EntityFactory(blueprint="Release", identifier=identifier, properties={"shippedAt": "2020-01-01T00:00:00Z"})
    EntityFactory(blueprint="Release", identifier="missing", properties={"size": 1})
    EntityFactory(blueprint="Release", identifier="number", properties={"size": 2})
    # the write path stores canonical text; older rows (and other writers) may hold anything
    for identifier, text in STORED.items():
        Entity.objects.filter(identifier=identifier).update(properties={"shippedAt": text})
    Entity.objects.filter(identifier="number").update(properties={"shippedAt": 5})


def found(operator, value):
    """What the rule finds, the same through a queryset and through a search page (a prepared statement)."""
    rule_set = {"combinator": "and", "rules": [{"property": "shippedAt", "operator": operator, "value": value}]}
    matched = set(search_queryset(rule_set, user=None, blueprint="Release").values_list("identifier", flat=True))
    for _ in range(7):  # past PostgreSQL's five custom plans of a prepared statement
        text, _ = search_page(blueprint_definition("Release"), rule_set, user=UserFactory(admin=True),
                              limit=100)
        assert {document["identifier"] for document in json.loads(text)} == matched
    return matched


RANGE = {"from": "2024-06-01T12:00:00Z", "to": "2024-06-02T00:00:00Z"}
IN_RANGE = {"at-low", "offset", "no-millis", "at-high"}


@pytest.mark.parametrize("operator, value, expected", [
    ("between", RANGE, IN_RANGE),
    ("notBetween", RANGE, EVERY - IN_RANGE),
    ("between", {"from": "2024-06-01T12:00:00Z"}, IN_RANGE | {"after-high"}),
    ("between", {"to": "2024-06-01"}, {"at-low", "before-low", "offset", "no-millis"}),  # the whole day
    (">", "2024-06-01T12:00:00.0005Z", {"no-millis", "at-high", "after-high"}),  # a bound finer than a millisecond
    (">=", "2024-06-01T12:00:00Z", IN_RANGE | {"after-high"}),
    ("<", "2024-06-01T12:00:00Z", {"before-low"}),
    ("<=", "2024-06-01T11:59:59.9995Z", {"before-low"}),
    ("<=", "2024-06-02T00:00:00.000999Z", {"at-low", "before-low", "offset", "no-millis", "at-high"}),
    (">", "2000-01-01T00:00:00+14:00", set(STORED) - {"looks-like"}),
])
def test_date_rules_over_stored_text(dated_catalog, operator, value, expected):
    assert found(operator, value) == expected
