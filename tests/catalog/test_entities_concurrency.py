"""Entity writers racing each other and a blueprint update (issue 12: "no deadlocks by design").

Threads with their own database connections write through the API at once: overlapping upserts whose
relations point at each other in different orders, bulk loads whose missing targets are other loads'
entities, and bulk upserts while the blueprint's definition changes under them. Every request must be
answered on its merits (no 5xx: before the lock order of catalog/services/row_locks.py these deadlocked
and answered 503), every entity must be there, and the audit log must hold exactly one event per
successful write.
"""
import threading
from collections import Counter

import pytest
from django.db import connections
from rest_framework.test import APIClient

from audit.models import AuditEvent
from catalog.models import Entity
from catalog.services.entities import UPSERT, entities_write
from portal.actor import Actor
from tests.factories import BlueprintFactory

pytestmark = pytest.mark.django_db(transaction=True)

STUB_MESSAGE = "Created as a stub by create_missing_related_entities."
JOIN_SECONDS = 120


def run_threads(count, work):
    """Run work(i) in `count` threads started together, each with its own connection; returns their errors."""
    start = threading.Barrier(count)
    errors = []

    def run(i):
        try:
            start.wait()
            work(i)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a writer is still waiting"
    return errors


def client_like(api):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"])
    return client


@pytest.fixture
def services(db):
    BlueprintFactory(identifier="group", title="Group", schema={"properties": {}})
    return BlueprintFactory(
        identifier="svc", title="Service",
        schema={"properties": {"counter": {"type": "number"}, "tier": {"type": "string"}, "note": {"type": "string"}}},
        relations={"dependsOn": {"title": "Depends on", "target": "svc", "many": True, "required": False},
                   "group": {"title": "Group", "target": "group", "many": False, "required": False}})


def entity_events(blueprint):
    return AuditEvent.objects.filter(resource_type="entity", blueprint=blueprint)


def assert_one_creation_each(blueprint, identifiers):
    created = Counter(entity_events(blueprint).filter(verb="catalog.entity.created").values_list("identifier", flat=True))
    assert {identifier: created[identifier] for identifier in identifiers} == {identifier: 1 for identifier in identifiers}


def test_sixteen_threads_of_overlapping_upserts_all_succeed_and_are_each_audited_once(admin_api, services):
    names = [f"e{i}" for i in range(8)]
    answers = []

    def upserts(t):
        client = client_like(admin_api)
        for r in range(4):
            index = (t + r) % len(names)
            related = [names[(index + step) % len(names)] for step in (1, 2, 3)]
            if t % 2:
                related.reverse()
            response = client.post("/v1/blueprints/svc/entities?upsert=true&merge=true&create_missing_related_entities=true",
                                   {"identifier": names[index], "properties": {"counter": t * 10 + r},
                                    "relations": {"dependsOn": related, "group": f"g{index % 2}"}}, format="json")
            answers.append((response.status_code, response.content[:300]))

    assert run_threads(16, upserts) == []
    assert [a for a in answers if a[0] not in (200, 201)] == []
    assert len(answers) == 64
    entities = {e.identifier: e for e in Entity.objects.filter(blueprint__identifier="svc")}
    assert sorted(entities) == names and not any(e.is_stub for e in entities.values())
    assert_one_creation_each("svc", names)
    assert_one_creation_each("group", ["g0", "g1"])
    assert entity_events("svc").exclude(message=STUB_MESSAGE).count() == 64  # one per successful write


def test_four_concurrent_bulk_loads_with_missing_related_entities_load_everything(admin_api, services):
    total, batch = 240, 20
    names = [f"s{i:03d}" for i in range(total)]
    answers = []

    def load(t):
        client = client_like(admin_api)
        mine = [i for i in range(total) if i % 4 == t]  # each load's entities relate to the other loads'
        for start in range(0, len(mine), batch):
            items = [{"identifier": names[i], "properties": {"counter": i},
                      "relations": {"dependsOn": [names[(i * 7 + 1) % total], names[(i * 13 + 5) % total]][::1 if t % 2 else -1],
                                    "group": f"g{i % 3}"}}
                     for i in mine[start:start + batch]]
            response = client.post("/v1/blueprints/svc/entities/bulk?upsert=true&create_missing_related_entities=true",
                                   {"entities": items}, format="json")
            answers.append((response.status_code, response.content[:300]))

    assert run_threads(4, load) == []
    assert [a for a in answers if a[0] != 200] == []
    entities = {e.identifier: e for e in Entity.objects.filter(blueprint__identifier="svc")}
    assert sorted(entities) == names
    assert [name for name, e in entities.items() if e.is_stub] == []
    assert_one_creation_each("svc", names)
    assert_one_creation_each("group", ["g0", "g1", "g2"])
    assert entity_events("svc").exclude(message=STUB_MESSAGE).count() == total  # one per loaded entity


def test_a_blueprint_update_racing_entity_writes_leaves_every_entity_valid(admin_api, services):
    system = Actor.system()
    svc = services
    existing = [f"old{i}" for i in range(8)]
    entities_write(actor=system, blueprint=svc, items=[{"identifier": name, "properties": {"note": "seeded"}} for name in existing],
                   mode=UPSERT)
    with_note = {"properties": {"counter": {"type": "number"}, "tier": {"type": "string"}, "note": {"type": "string"}}}
    without_note = {"properties": {"counter": {"type": "number"}, "tier": {"type": "string"}}}
    answers, written = [], []

    def write(t):
        client = client_like(admin_api)
        if t == 0:  # the blueprint's owner: drops 'note' (migrating every entity holding it) and adds it back
            for schema in [without_note, with_note] * 3 + [without_note]:
                response = client.patch("/v1/blueprints/svc", {"schema": schema}, format="json")
                answers.append(("blueprint", response.status_code, response.content[:300]))
            return
        for r in range(6):
            # Each write changes its entity (a counter of its own): an unchanged write by the same writer is not
            # written nor audited, and the count below is of writes.
            items = [{"identifier": existing[(t + r + k) % len(existing)],
                      "properties": {"tier": f"t{t}", "note": "n", "counter": 100 * t + 10 * r + k}}
                     for k in range(2)]
            items += [{"identifier": f"new-{t}-{r}-{k}", "properties": {"tier": f"t{t}", "note": "n"}} for k in range(2)]
            response = client.post("/v1/blueprints/svc/entities/bulk?upsert=true", {"entities": items}, format="json")
            answers.append(("entities", response.status_code, response.content[:300]))
            if response.status_code in (200, 207):
                written.extend(done["identifier"] for done in response.json()["entities"])

    assert run_threads(5, write) == []
    assert [a for a in answers if a[0] == "blueprint" and a[1] != 200] == []
    assert [a for a in answers if a[0] == "entities" and a[1] not in (200, 207)] == []
    # The final definition has no 'note': no entity may hold one (a write validated against the old one and
    # committed after the migration would).
    assert list(Entity.objects.filter(blueprint__identifier="svc", properties__has_key="note").values_list("identifier", flat=True)) == []
    assert set(written) <= set(Entity.objects.filter(blueprint__identifier="svc").values_list("identifier", flat=True))
    writes = entity_events("svc").filter(verb__in=["catalog.entity.created", "catalog.entity.updated"], message="")
    assert writes.count() == len(existing) + len(written)  # the seed, then one per successful write
