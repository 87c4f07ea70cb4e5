"""A catalog whose Service mirrors values its readers may not all read (`mirror_catalog`):
- `credentialKey` / `credentialTitle` through `credential` from Credential, which members may not read;
- `regionName` through `cluster.region`: Cluster (the middle) is unreadable, Region (the end) is readable;
- `teamKeyValue` through `teamKey` from TeamKey, read `ownedByTeam` only: per entity; `teamKeyRegion` through
  `teamKey.region`: per entity in the middle;
- `credentialTeam`, the `$team` of the Credential.
"""
from catalog.models import Blueprint
from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, UserFactory

SYSTEM = Actor.system()


SECRET = "s3cret-api-key"

HIDDEN_REGION = "eu-hidden-1"

SERVICE = {
    "identifier": "Service", "title": "Service",
    "schema": {"properties": {"language": {"type": "string", "title": "Language"}}},
    "relations": {"credential": {"target": "Credential", "many": False},
                  "cluster": {"target": "Cluster", "many": False},
                  "teamKey": {"target": "TeamKey", "many": False}},
    "mirrorProperties": {"credentialKey": {"title": "Credential key", "path": "credential.apiKey"},
                         "credentialTitle": {"path": "credential.$title"},
                         "regionName": {"path": "cluster.region.name"},
                         "teamKeyValue": {"path": "teamKey.value"},
                         "teamKeyRegion": {"path": "teamKey.region.name"},
                         "credentialTeam": {"path": "credential.$team"}},
    "calculationProperties": {"keyLabel": {"type": "string",
                                           "calculation": '"key:" + (.properties.credentialKey // "none")'}},
}


def blueprint(identifier):
    return Blueprint.objects.get(identifier=identifier)


def write(blueprint_identifier, identifier, **data):
    return EntityFactory(blueprint=blueprint_identifier, identifier=identifier, **data)


def mirror_catalog():
    """The blueprints and entities of the module docstring; users dev@ (platform), sec@ (security: reads
    Credential and Cluster) and admin@. `checkout` mirrors every hidden value; `portal` mirrors its own team's key."""
    UserFactory(email="admin@example.com", admin=True)
    UserFactory(email="dev@example.com", teams=["platform"])
    UserFactory(email="sec@example.com", teams=["security"])
    UserFactory(email="pay@example.com", teams=["payments"])
    for identifier, properties in (("Credential", {"apiKey": {"type": "string"}}), ("Region", {"name": {"type": "string"}})):
        BlueprintFactory(identifier=identifier, title=identifier, schema={"properties": properties})
    for identifier, properties in (("Cluster", {}), ("TeamKey", {"value": {"type": "string"}})):
        BlueprintFactory(identifier=identifier, title=identifier, schema={"properties": properties},
                         relations={"region": {"target": "Region", "many": False}})
    BlueprintFactory(**SERVICE)
    for hidden in ("Credential", "Cluster"):
        blueprint_permissions_update(actor=SYSTEM, blueprint=blueprint(hidden),
                                     data={"entities": {"read": {"roles": [], "teams": ["security"]}}})
    blueprint_permissions_update(actor=SYSTEM, blueprint=blueprint("TeamKey"),
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    write("Credential", "prod-cred", title="Prod credential", team=["security"], properties={"apiKey": SECRET})
    write("Region", "eu", properties={"name": HIDDEN_REGION})
    write("Region", "us", properties={"name": "us-east"})
    write("Cluster", "c1", relations={"region": "eu"})
    write("TeamKey", "mine", team=["platform"], properties={"value": "platform-key"}, relations={"region": "us"})
    write("TeamKey", "theirs", team=["payments"], properties={"value": "payments-key"}, relations={"region": "us"})
    write("Service", "checkout", team=["platform"], properties={"language": "Go"},
          relations={"credential": "prod-cred", "cluster": "c1", "teamKey": "theirs"})
    write("Service", "portal", team=["platform"], properties={"language": "Go"}, relations={"teamKey": "mine"})
