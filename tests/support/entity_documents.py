"""A catalog of varied entities for the entity JSON (`varied_catalog`): App relates to one Cluster (which relates to a
Region) and to many Libraries, mirrors values one and two hops away (properties, `$title`, `$team`, `$createdAt`,
`$blueprint`, `$icon`, `$identifier`), computes a calculation, counts its Libraries (an aggregation) and is scored by a scorecard; its entities hold
unicode, nulls, nested objects and huge numbers. Members read Library only as the platform team and Cluster only
where their team owns it, so what each user sees differs.

Users: admin@ (admin), dev@ (platform), pay@ (payments), nobody@ (no team).
"""
import json

from catalog.models import Blueprint, Entity
from catalog.selectors.entities import entities_json, entities_visible_to
from catalog.services.scorecards import scorecard_create
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, UserFactory

SYSTEM = Actor.system()

APP = {
    "identifier": "App", "title": "App",
    "schema": {"properties": {"language": {"type": "string"}, "replicas": {"type": "number"},
                              "readme": {"type": "string"}, "notes": {"type": "string"},
                              "limits": {"type": "object"}, "huge": {"type": "number"}}},
    "relations": {"cluster": {"target": "Cluster", "many": False}, "libraries": {"target": "Library", "many": True},
                  "spare": {"target": "Region", "many": False}, "deps": {"target": "Library", "many": True}},
    "mirrorProperties": {"clusterTitle": {"path": "cluster.$title"}, "regionName": {"path": "cluster.region.name"},
                         "libVersions": {"path": "libraries.version"}, "libTeams": {"path": "libraries.$team"},
                         "libCreated": {"path": "libraries.$createdAt"},
                         "clusterBlueprint": {"path": "cluster.$blueprint"}, "clusterIcon": {"path": "cluster.$icon"},
                         "clusterId": {"path": "cluster.$identifier"}, "spareName": {"path": "spare.name"},
                         "libRegions": {"path": "libraries.home.name"}},
    "calculationProperties": {"label": {"type": "string",
                                        "calculation": '.identifier + ":" + (.properties.language // "none")'},
                              "broken": {"type": "number", "calculation": ".properties.language | tonumber"}},
    "aggregationProperties": {"libraryCount": {"title": "Libraries", "type": "number", "target": "Library",
                                               "calculationSpec": {"calculationBy": "entities", "func": "count"}}},
}

READINESS = {
    "identifier": "readiness", "title": "Readiness",
    "rules": [{"identifier": "hasReadme", "title": "Readme", "level": "Bronze",
               "query": {"combinator": "and", "conditions": [{"property": "readme", "operator": "isNotEmpty"}]}},
              {"identifier": "replicated", "title": "Replicated", "level": "Silver",
               "query": {"combinator": "and", "conditions": [{"property": "replicas", "operator": ">=", "value": 2}]}}],
}

APPS = ("full", "bare", "partial", "unicode")


def varied_catalog():
    UserFactory(email="admin@example.com", admin=True)
    UserFactory(email="dev@example.com", teams=["platform"])
    UserFactory(email="pay@example.com", teams=["payments"])
    UserFactory(email="nobody@example.com")
    BlueprintFactory(identifier="Region", title="Region", schema={"properties": {"name": {"type": "string"}}})
    BlueprintFactory(identifier="Cluster", title="Cluster", schema={"properties": {"name": {"type": "string"}}},
                     relations={"region": {"target": "Region", "many": False}},
                     permissions={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    BlueprintFactory(identifier="Library", title="Library",
                     schema={"properties": {"version": {"type": "string"}, "size": {"type": "number"}}},
                     relations={"home": {"target": "Region", "many": False}},
                     permissions={"entities": {"read": {"roles": [], "teams": ["platform"]}}})
    BlueprintFactory(**APP)
    scorecard_create(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="App"), data=READINESS)
    EntityFactory(blueprint="Region", identifier="eu", title="Europe", properties={"name": "eu-west"})
    EntityFactory(blueprint="Region", identifier="ch", title="Schweiz", properties={"name": "Zürich ☃ 東京"})
    EntityFactory(blueprint="Cluster", identifier="c1", title="Cluster one", icon="Cluster", team=["platform"],
                  relations={"region": "eu"})
    EntityFactory(blueprint="Cluster", identifier="c2", team=["payments"])
    EntityFactory(blueprint="Library", identifier="l1", title="One", team=["platform", "payments"],
                  properties={"version": "1.0", "size": 12345678901234567890123}, relations={"home": "ch"})
    EntityFactory(blueprint="Library", identifier="l2", properties={"version": "2.0", "size": 1.5e300},
                  team=["payments"])
    EntityFactory(blueprint="Library", identifier="l3", title="Ünïcode ☃", relations={"home": "eu"})
    EntityFactory(blueprint="App", identifier="full", title="Full app", icon="Service", team=["platform", "payments"],
                  properties={"language": "Go", "replicas": 3, "readme": "https://docs.example.com",
                              "notes": None, "limits": {"cpu": "2", "nested": {"deep": [1, 2.5, None, "x"]}},
                              "huge": 98765432109876543210987654321},
                  relations={"cluster": "c1", "libraries": ["l2", "l1", "l3"]})
    EntityFactory(blueprint="App", identifier="bare")
    EntityFactory(blueprint="App", identifier="partial", team=["payments"], properties={"replicas": 0.000001},
                  relations={"cluster": "c2", "libraries": ["l1"]})
    EntityFactory(blueprint="App", identifier="unicode", title="Café ☕ 日本", properties={"language": "Ελληνικά \"q\"\\"},
                  relations={"libraries": ["l3"], "spare": "ch"})


def app_documents(user, **options):
    """The documents `entities_json` writes for the App entities `user` may read, by id: what a search page of App
    must hold (entities_json options: include, exclude, calculated)."""
    rows = entities_visible_to(user, Entity.objects.filter(blueprint__identifier="App")).select_related("blueprint")
    return entities_json(list(rows.order_by("id")), user=user, **options)


def _one_of_each(pairs):
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key written twice: {keys}"
    return dict(pairs)


def parsed_once_each(text):
    """JSON text as the API answers it, parsed, failing when an object in it names a key twice (a parse would keep
    only one of them, so comparing parsed documents cannot see it)."""
    return json.loads(text, object_pairs_hook=_one_of_each)
