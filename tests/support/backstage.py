"""The Backstage test catalog (tests/fixtures/backstage/: every kind, every relation, three namespaces, a Location
tree with a cycle, invalid documents), the graph it must become, and a fake GitHub serving descriptors."""
import shutil
from pathlib import Path

from catalog.models import Entity, Relation

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "backstage"

C, A, R, S, D, G, U = (f"backstage_{kind}" for kind in ("component", "api", "resource", "system", "domain", "group",
                                                        "user"))
# (source blueprint, source, relation, target blueprint, target) of every edge the test catalog defines.
EXPECTED_EDGES = {
    (G, "engineering", "parentOf", G, "payments-team"),
    (G, "payments-team", "childOf", G, "engineering"),
    (G, "payments-team", "hasMember", U, "alice"),
    (U, "alice", "memberOf", G, "payments-team"),
    (U, "bob", "memberOf", G, "infra/sre"),
    (U, "bob", "memberOf", G, "payments-team"),
    (D, "commerce", "ownedBy", G, "engineering"),
    (D, "payments", "ownedBy", G, "payments-team"),
    (D, "payments", "subdomainOf", D, "commerce"),
    (S, "checkout", "ownedBy", G, "payments-team"),
    (S, "checkout", "partOf", D, "payments"),
    (C, "cart", "ownedBy", G, "payments-team"),
    (C, "cart", "partOf", S, "checkout"),
    (C, "cart", "providesApi", A, "cart-api"),
    (C, "cart", "consumesApi", A, "infra/metrics-api"),
    (C, "cart", "dependsOnResource", R, "cart-db"),
    (C, "cart", "dependsOn", C, "pricing"),
    (C, "pricing", "ownedByUser", U, "alice"),
    (C, "pricing", "subcomponentOf", C, "cart"),
    (C, "pricing", "dependencyOf", C, "cart"),
    (C, "pricing", "dependencyOfResource", R, "cart-db"),
    (A, "cart-api", "ownedBy", G, "payments-team"),
    (A, "cart-api", "partOf", S, "checkout"),
    (R, "cart-db", "ownedBy", G, "payments-team"),
    (R, "cart-db", "partOf", S, "checkout"),
    (R, "cart-db", "dependsOnResource", R, "infra/storage-cluster"),
    (G, "infra/sre", "childOf", G, "engineering"),
    (U, "contractors/carol", "memberOf", G, "infra/sre"),
    (A, "infra/metrics-api", "ownedBy", G, "infra/sre"),
    (R, "infra/storage-cluster", "ownedBy", G, "infra/sre"),
    (C, "legacy", "ownedBy", G, "payments-team"),
    (R, "queue", "ownedBy", G, "payments-team"),
    (R, "queue", "dependencyOf", C, "legacy"),
}
EXPECTED_ENTITIES = {(bp, i) for bp, i, _, _, _ in EXPECTED_EDGES} | {(bp, i) for _, _, _, bp, i in EXPECTED_EDGES}
# (file, document index, field) of every error the test catalog holds.
EXPECTED_ERRORS = {
    ("invalid.yaml", 1, "spec.owner"),
    ("invalid.yaml", 2, "metadata.name"),
    ("invalid.yaml", 3, "kind"),
    ("invalid.yaml", 4, "metadata.tags"),
    ("invalid.yaml", 6, ""),
}


def catalog_copy(directory):
    """A copy of the test catalog under `directory` (tests edit and remove descriptors); its root file."""
    shutil.copytree(FIXTURES, directory / "backstage")
    return directory / "backstage" / "all.yaml"


def edges():
    return set(Relation.objects.values_list("source__blueprint__identifier", "source__identifier", "relation",
                                            "target__blueprint__identifier", "target__identifier"))


def entity_keys(**filters):
    return set(Entity.objects.filter(**filters).values_list("blueprint__identifier", "identifier"))


def error_keys(errors, root):
    """(file relative to `root`, the test catalog's directory or URL, document, field) of errors as the API and the
    location hold them."""
    prefix = str(root).rstrip("/") + "/"
    return {(error["file"].removeprefix(prefix), error["document"], error["field"]) for error in errors}
