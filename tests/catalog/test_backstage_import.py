"""Backstage descriptors into the catalog (catalog/services/backstage.py): the test catalog's graph, its errors,
refreshes after an edit and a removal, and what a location never touches."""
import pytest
import yaml

from audit.models import AuditEvent
from catalog.backstage.references import entity_identifier, reference_parse
from catalog.identifiers import check_entity_identifier
from catalog.models import BackstageLocation, Blueprint, Entity
from catalog.services.backstage import (backstage_blueprints_install, backstage_import, backstage_location_delete,
                                        backstage_location_refresh, backstage_location_register,
                                        backstage_location_update)
from portal.errors import ValidationFailed
from tests.factories import EntityFactory
from tests.support.backstage import (EXPECTED_EDGES, EXPECTED_ENTITIES, EXPECTED_ERRORS, FIXTURES, G, R, C,
                                     catalog_copy, edges, entity_keys, error_keys)

pytestmark = pytest.mark.django_db


@pytest.fixture
def backstage_blueprints(system):
    return backstage_blueprints_install(actor=system)


@pytest.fixture
def backstage_root(tmp_path, settings):
    settings.BACKSTAGE_FILE_ROOTS = [str(tmp_path)]
    return catalog_copy(tmp_path)


def register(actor, root, identifier="test-catalog"):
    return backstage_location_register(actor=actor, data={"identifier": identifier, "type": "file", "target": str(root)})


@pytest.mark.parametrize("reference, default_kind, namespace, expected", [
    ("payments-team", "group", "default", ("group", "default", "payments-team")),
    ("user:alice", "group", "default", ("user", "default", "alice")),
    ("group:infra/sre", "group", "default", ("group", "infra", "sre")),
    ("sre", "group", "infra", ("group", "infra", "sre")),  # the referring entity's namespace, as Backstage resolves it
    ("Group:Default/Payments-Team", None, "default", ("group", "default", "payments-team")),
])
def test_references_resolve_as_backstage_does(reference, default_kind, namespace, expected):
    assert reference_parse(reference, field="spec.owner", default_kind=default_kind, default_namespace=namespace) == expected


@pytest.mark.parametrize("reference", ["cart-db", "", "resource:", "resource:a/b/c", "resource:bad name", "x" * 64, 7])
def test_bad_references_name_their_field(reference):
    with pytest.raises(ValidationFailed) as caught:
        reference_parse(reference, field="spec.dependsOn[0]")
    assert caught.value.path == "spec.dependsOn[0]"


def test_identifiers_keep_a_namespace_other_than_default():
    assert entity_identifier("default", "Cart") == "cart"
    assert entity_identifier("infra", "sre") == "infra/sre"
    check_entity_identifier(entity_identifier("a" * 63, "b.c_d-" + "e" * 57))  # the longest: within the portal's rules


def test_blueprints_install_once(system, backstage_blueprints):
    assert sorted(backstage_blueprints) == sorted(f"backstage_{k}" for k in
                                                  ("component", "api", "resource", "system", "domain", "group", "user"))
    assert Blueprint.objects.get(identifier=C).relations["ownedByUser"]["target"] == "backstage_user"
    assert backstage_blueprints_install(actor=system) == []


def test_a_location_tree_becomes_the_expected_graph(system, backstage_blueprints, backstage_root):
    location = backstage_location_refresh(actor=system, location=register(system, backstage_root))
    assert edges() == EXPECTED_EDGES
    assert entity_keys(is_stub=False) == EXPECTED_ENTITIES
    assert entity_keys(datasource=location.datasource) == EXPECTED_ENTITIES
    assert error_keys(location.errors, backstage_root.parent) == EXPECTED_ERRORS
    assert location.entity_count == len(EXPECTED_ENTITIES) and location.files_read == 6  # the cycle read once
    cart = Entity.objects.get(blueprint__identifier=C, identifier="cart")
    assert cart.title == "Cart service"
    assert cart.properties == {
        "namespace": "default", "description": "Holds what a customer is about to buy.", "tags": ["python", "grpc"],
        "links": [{"url": "https://dashboards.example.com/cart", "title": "Dashboard", "icon": "dashboard"}],
        "annotations": {"github.com/project-slug": "example/cart", "backstage.io/techdocs-ref": "dir:."},
        "labels": {"tier": "1"}, "type": "service", "lifecycle": "production"}
    sre = Entity.objects.get(blueprint__identifier=G, identifier="infra/sre")
    assert sre.properties["namespace"] == "infra" and sre.title == "sre"
    metrics = Entity.objects.get(blueprint__identifier="backstage_api", identifier="infra/metrics-api")
    assert metrics.properties["definition"] == (FIXTURES / "platform" / "apis" / "metrics.yaml").read_text()  # $text
    carol = Entity.objects.get(blueprint__identifier="backstage_user", identifier="contractors/carol")
    assert carol.title == "Carol Contractor" and carol.properties["namespace"] == "contractors"
    assert Entity.objects.get(blueprint__identifier="backstage_user", identifier="alice").properties["email"] == \
        "alice@example.com"
    messages = {(e["document"], e["field"]): e["message"] for e in location.errors}
    assert messages[(1, "spec.owner")] == "is required"
    assert "'Template' is not a kind" in messages[(3, "kind")]
    assert messages[(6, "")].startswith("YAML does not parse (line")
    audit = AuditEvent.objects.filter(verb="catalog.backstage_location.refreshed")
    assert [event.diff["after"]["entityCount"] for event in audit] == [len(EXPECTED_ENTITIES)]


def test_a_refresh_follows_edits_and_removals(system, backstage_blueprints, backstage_root):
    location = backstage_location_refresh(actor=system, location=register(system, backstage_root))
    other = EntityFactory(blueprint=C, identifier="written-by-someone-else")  # no datasource: not the location's
    services = backstage_root.parent / "services" / "catalog-info.yaml"
    documents = list(yaml.safe_load_all(services.read_text()))
    documents[0]["spec"]["lifecycle"] = "deprecated"
    documents[0]["spec"]["dependsOn"] = ["component:pricing"]
    services.write_text(yaml.safe_dump_all([d for d in documents if d["metadata"]["name"] != "cart-db"]))
    # The valid `legacy` becomes invalid: it is reported, and kept as the last good refresh wrote it.
    invalid = backstage_root.parent / "invalid.yaml"
    invalid.write_text(invalid.read_text().replace("  owner: payments-team\n---", "  owner: 'user:'\n---", 1))

    location = backstage_location_refresh(actor=system, location=location)

    cart = Entity.objects.get(blueprint__identifier=C, identifier="cart")
    assert cart.properties["lifecycle"] == "deprecated"
    assert (R, "cart-db") not in entity_keys()
    removed = {e for e in EXPECTED_EDGES if (R, "cart-db") in (e[:2], e[3:])}
    assert edges() == EXPECTED_EDGES - removed
    assert (C, "legacy") in entity_keys(datasource=location.datasource)
    assert ("invalid.yaml", 0, "spec.owner") in error_keys(location.errors, backstage_root.parent)
    assert Entity.objects.filter(pk=other.pk).exists()
    assert location.entity_count == len(EXPECTED_ENTITIES) - 1


def test_a_location_that_cannot_be_read_removes_nothing(system, backstage_blueprints, backstage_root):
    location = backstage_location_refresh(actor=system, location=register(system, backstage_root))
    backstage_root.unlink()
    location = backstage_location_refresh(actor=system, location=location)
    assert entity_keys(datasource=location.datasource) == EXPECTED_ENTITIES
    assert error_keys(location.errors, backstage_root.parent) == {("all.yaml", None, "target")}


def test_a_file_outside_the_roots_is_not_read(system, backstage_blueprints, backstage_root, settings):
    location = register(system, backstage_root)
    settings.BACKSTAGE_FILE_ROOTS = [str(backstage_root.parent / "services")]  # narrowed after the registration
    location = backstage_location_refresh(actor=system, location=location)
    assert location.entity_count == 0
    assert "not under a directory in BACKSTAGE_FILE_ROOTS" in location.errors[0]["message"]
    with pytest.raises(ValidationFailed) as refused:  # and registering such a file is refused at once
        register(system, backstage_root, identifier="outside")
    assert str(refused.value.errors[0]).startswith("target: is not under a directory in BACKSTAGE_FILE_ROOTS")


def test_two_locations_remove_only_their_own(system, backstage_blueprints, backstage_root):
    whole = backstage_location_refresh(actor=system, location=register(system, backstage_root))
    platform = register(system, backstage_root.parent / "platform" / "catalog-info.yaml", identifier="platform")
    platform = backstage_location_refresh(actor=system, location=platform)  # it reads the whole tree too: owns it now
    assert platform.entity_count == len(EXPECTED_ENTITIES)
    backstage_location_delete(actor=system, location=whole)  # owns nothing any more: removes nothing
    assert entity_keys(is_stub=False) == EXPECTED_ENTITIES
    backstage_location_delete(actor=system, location=platform)
    assert entity_keys() == set() and not BackstageLocation.objects.exists()
    assert AuditEvent.objects.filter(verb="catalog.backstage_location.deleted").count() == 2


def test_the_one_off_import_writes_without_a_datasource(system, backstage_blueprints):
    written, errors = backstage_import(actor=system, targets=[str(FIXTURES / "all.yaml")])
    assert written == EXPECTED_ENTITIES and error_keys([e.as_json() for e in errors], FIXTURES) == EXPECTED_ERRORS
    assert entity_keys(datasource="") == EXPECTED_ENTITIES


def test_a_refresh_without_the_blueprints_is_refused(system, backstage_root):
    with pytest.raises(ValidationFailed, match="Backstage blueprints are not installed"):
        backstage_location_refresh(actor=system, location=register(system, backstage_root))


def test_registration_checks_its_fields(system, settings):
    settings.BACKSTAGE_URL_ALLOWED_PREFIXES = ["https://git.example.com/"]
    for data, field in [({"identifier": "a/b", "type": "file", "target": "/x"}, "identifier"),
                        ({"identifier": "a", "type": "ftp", "target": "/x"}, "type"),
                        ({"identifier": "a", "type": "file", "target": "relative.yaml"}, "target"),
                        ({"identifier": "a", "type": "url", "target": "https://elsewhere.example.com/c.yaml"}, "target"),
                        ({"identifier": "a", "type": "github", "target": "../org"}, "target"),
                        ({"identifier": "a", "type": "github", "target": "org", "catalogPath": "../x"}, "catalogPath"),
                        ({"identifier": "a", "type": "file", "target": "/x", "refreshIntervalMinutes": 0},
                         "refreshIntervalMinutes"),
                        ({"identifier": "a", "type": "file", "target": "/x\x00"}, "target"),
                        ({"identifier": "a", "type": "file", "target": "/x", "extra": 1}, "extra")]:
        with pytest.raises(ValidationFailed) as caught:
            backstage_location_register(actor=system, data=data)
        assert caught.value.path == field, data
    assert not BackstageLocation.objects.exists()


ODD_DOCUMENTS = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: aliased, tags: &tags [*tags]}
spec: {type: service, lifecycle: production, owner: team}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: 12345678901234567890}
spec: {type: service, lifecycle: production, owner: team}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: nan-type}
spec: {type: .nan, lifecycle: production, owner: team}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: self, annotations: &a {x: *a}}
spec: {type: service, lifecycle: production, owner: team}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: Dup}
spec: {type: service, lifecycle: production, owner: team}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: dup}
spec: {type: service, lifecycle: production, owner: team}
---
just a string
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: secret-api}
spec: {type: openapi, lifecycle: production, owner: team, definition: {$text: /etc/passwd}}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: deep}
spec: {type: service, lifecycle: production, owner: team, dependsOn: """ + "[" * 5000 + "]" * 5000 + "}\n"


def test_odd_documents_are_reported_one_by_one(system, backstage_blueprints, tmp_path, settings):
    settings.BACKSTAGE_FILE_ROOTS = [str(tmp_path)]
    (tmp_path / "odd.yaml").write_text(ODD_DOCUMENTS)
    (tmp_path / "latin1.yaml").write_bytes("metadata: {name: café}".encode("latin-1"))
    (tmp_path / "all.yaml").write_text("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: odd}\n"
                                       "spec: {targets: [./odd.yaml, ./latin1.yaml, ./missing.yaml, /etc/passwd]}\n")
    location = backstage_location_refresh(actor=system, location=register(system, tmp_path / "all.yaml"))
    assert {(error["file"].rsplit("/", 1)[-1], error["document"], error["field"]) for error in location.errors} == {
        ("odd.yaml", 0, "metadata.tags[0]"), ("odd.yaml", 1, "metadata.name"), ("odd.yaml", 2, "spec.type"),
        ("odd.yaml", 3, "metadata.annotations.x"), ("odd.yaml", 5, "metadata.name"), ("odd.yaml", 6, ""),
        ("odd.yaml", 7, "spec.definition"), ("odd.yaml", 8, ""), ("all.yaml", None, "target"), ("all.yaml", 0, "spec.targets[3]")}
    messages = " ".join(error["message"] for error in location.errors)
    assert "latin1.yaml cannot be read" in messages and "missing.yaml cannot be read" in messages
    assert "already defined in" in messages and "root:" not in messages  # /etc/passwd never read
    assert "/etc/passwd cannot be read: not under a directory in BACKSTAGE_FILE_ROOTS" in messages
    assert entity_keys(datasource=location.datasource) == {(C, "dup")}


def test_a_refresh_keeps_a_bounded_number_of_errors(system, backstage_blueprints, backstage_root, monkeypatch):
    monkeypatch.setattr("catalog.services.backstage.ERRORS_KEPT", 2)
    location = backstage_location_refresh(actor=system, location=register(system, backstage_root))
    assert len(location.errors) == 3
    assert location.errors[2]["message"] == f"and {len(EXPECTED_ERRORS) - 2} more errors, not kept"


def test_an_update_that_changes_nothing_is_not_audited(system, backstage_root):
    location = register(system, backstage_root)
    backstage_location_update(actor=system, location=location, data={"target": str(backstage_root)})
    backstage_location_update(actor=system, location=location, data={"refreshIntervalMinutes": 5})
    audit = AuditEvent.objects.filter(resource_type="backstage_location").order_by("id")
    assert [(e.verb, e.diff["after"].get("refreshIntervalMinutes")) for e in audit] == [
        ("catalog.backstage_location.created", 30), ("catalog.backstage_location.updated", 5)]
    with pytest.raises(ValidationFailed, match="identifier cannot change"):
        backstage_location_update(actor=system, location=location, data={"identifier": "other"})
