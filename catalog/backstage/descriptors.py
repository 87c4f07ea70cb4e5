"""One Backstage descriptor (a parsed YAML document) as a portal entity of the Backstage blueprints
(catalog/fixtures/backstage-blueprints.json): what each kind's spec fields become.

Each relation field becomes one relation of the entity that declares it, named as Backstage names the
relation from that side (`spec.owner` → `ownedBy`); the other side (ownerOf, hasPart, apiProvidedBy, ...) is
the same edge read backwards, as the entity page shows incoming relations. A field whose references may name
two kinds (an owner is a Group or a User; dependsOn a Component or a Resource) has one relation per target
kind (`ownedBy`, `ownedByUser`)."""
from dataclasses import dataclass

from catalog.backstage.references import DEFAULT_NAMESPACE, check_name, entity_identifier, reference_parse
from portal.errors import ValidationFailed

API_VERSIONS = {"backstage.io/v1alpha1", "backstage.io/v1beta1"}
BLUEPRINTS = {"component": "backstage_component", "api": "backstage_api", "resource": "backstage_resource",
              "system": "backstage_system", "domain": "backstage_domain", "group": "backstage_group",
              "user": "backstage_user"}
LOCATION_KIND = "location"

OWNER = ("group", False, {"group": "ownedBy", "user": "ownedByUser"})
SYSTEM = ("system", False, {"system": "partOf"})
DEPENDS_ON = (None, True, {"component": "dependsOn", "resource": "dependsOnResource"})
DEPENDENCY_OF = (None, True, {"component": "dependencyOf", "resource": "dependencyOfResource"})
# kind -> {spec field: (default kind of its references, many, {target kind: relation})}
RELATION_FIELDS = {
    "component": {"owner": OWNER, "system": SYSTEM, "subcomponentOf": ("component", False, {"component": "subcomponentOf"}),
                  "providesApis": ("api", True, {"api": "providesApi"}), "consumesApis": ("api", True, {"api": "consumesApi"}),
                  "dependsOn": DEPENDS_ON, "dependencyOf": DEPENDENCY_OF},
    "api": {"owner": OWNER, "system": SYSTEM},
    "resource": {"owner": OWNER, "system": SYSTEM, "dependsOn": DEPENDS_ON, "dependencyOf": DEPENDENCY_OF},
    "system": {"owner": OWNER, "domain": ("domain", False, {"domain": "partOf"})},
    "domain": {"owner": OWNER, "subdomainOf": ("domain", False, {"domain": "subdomainOf"})},
    "group": {"parent": ("group", False, {"group": "childOf"}), "children": ("group", True, {"group": "parentOf"}),
              "members": ("user", True, {"user": "hasMember"})},
    "user": {"memberOf": ("group", True, {"group": "memberOf"})},
}
REQUIRED_SPEC = {"component": ("type", "lifecycle", "owner"), "api": ("type", "lifecycle", "owner", "definition"),
                 "resource": ("type", "owner"), "system": ("owner",), "domain": ("owner",),
                 "group": ("type", "children"), "user": ("memberOf",)}
SPEC_STRINGS = ("type", "lifecycle", "definition")


@dataclass(frozen=True)
class Descriptor:
    """A descriptor as the entity it becomes: `blueprint` and `entity` (Port's entity JSON)."""

    kind: str
    blueprint: str
    entity: dict

    @property
    def key(self):
        return self.blueprint, self.entity["identifier"]


def _string(value, field):
    if not isinstance(value, str):
        raise ValidationFailed("must be a string", path=field)
    return value


def _mapping_of_strings(value, field):
    if not isinstance(value, dict):
        raise ValidationFailed("must be a mapping of strings", path=field)
    for key, item in value.items():
        _string(key, field)
        _string(item, f"{field}.{key}")
    return dict(value)


def _tags(value, field):
    if not isinstance(value, list):
        raise ValidationFailed("must be a list of strings", path=field)
    return [_string(tag, f"{field}[{i}]") for i, tag in enumerate(value)]


def _links(value, field):
    if not isinstance(value, list):
        raise ValidationFailed("must be a list of {url, title, icon, type}", path=field)
    links = []
    for i, link in enumerate(value):
        if not isinstance(link, dict) or "url" not in link:
            raise ValidationFailed("must be a mapping with a url", path=f"{field}[{i}]")
        links.append({key: _string(link[key], f"{field}[{i}].{key}") for key in ("url", "title", "icon", "type")
                      if key in link})
    return links


def _metadata_properties(metadata, namespace):
    properties = {"namespace": namespace}
    if "description" in metadata:
        properties["description"] = _string(metadata["description"], "metadata.description")
    for key, read in (("tags", _tags), ("links", _links), ("annotations", _mapping_of_strings),
                      ("labels", _mapping_of_strings)):
        if metadata.get(key) is not None:
            properties[key] = read(metadata[key], f"metadata.{key}")
    return properties


def _relations(kind, spec, namespace):
    relations = {}
    for field, (default_kind, many, by_kind) in RELATION_FIELDS[kind].items():
        if spec.get(field) is None:
            continue
        values = spec[field]
        if many and not isinstance(values, list):
            raise ValidationFailed("must be a list of entity references", path=f"spec.{field}")
        for i, value in enumerate(values if many else [values]):
            path = f"spec.{field}[{i}]" if many else f"spec.{field}"
            target_kind, target_namespace, name = reference_parse(value, field=path, default_kind=default_kind,
                                                                  default_namespace=namespace)
            if target_kind not in by_kind:
                raise ValidationFailed(f"{value!r} is a {target_kind}; this field takes "
                                       f"{' or '.join(sorted(by_kind))}", path=path)
            relation = by_kind[target_kind]
            target = entity_identifier(target_namespace, name)
            if many:
                relations.setdefault(relation, []).append(target)
            else:
                relations[relation] = target
    return relations


def _spec_properties(kind, spec):
    properties = {key: _string(spec[key], f"spec.{key}") for key in SPEC_STRINGS if key in spec}
    profile = spec.get("profile")
    if kind in ("group", "user") and profile is not None:
        if not isinstance(profile, dict):
            raise ValidationFailed("must be a mapping", path="spec.profile")
        properties.update({key: _string(profile[key], f"spec.profile.{key}")
                           for key in ("displayName", "email", "picture") if key in profile})
    return properties


def descriptor_key(document):
    """(blueprint, identifier) a document names, valid or not; None when its kind or name cannot be read."""
    try:
        metadata = document["metadata"]
        return (BLUEPRINTS[document["kind"].lower()],
                entity_identifier(check_name(metadata.get("namespace", DEFAULT_NAMESPACE), ""),
                                  check_name(metadata["name"], "")))
    except (KeyError, TypeError, AttributeError, ValidationFailed):
        return None


def descriptor_parse(document):
    """The Descriptor of a parsed YAML document, or None for a Location (read by the location reader).
    Raises ValidationFailed naming the field at fault."""
    if not isinstance(document, dict):
        raise ValidationFailed("a descriptor must be a mapping", path="")
    if document.get("apiVersion") not in API_VERSIONS:
        raise ValidationFailed(f"must be one of {', '.join(sorted(API_VERSIONS))}", path="apiVersion")
    kind = _string(document.get("kind"), "kind").lower()
    if kind == LOCATION_KIND:
        return None
    if kind not in BLUEPRINTS:
        raise ValidationFailed(f"{document['kind']!r} is not a kind the portal imports "
                               f"({', '.join(k.title() for k in BLUEPRINTS)}, Location)", path="kind")
    metadata, spec = document.get("metadata"), document.get("spec")
    if not isinstance(metadata, dict):
        raise ValidationFailed("is required, a mapping", path="metadata")
    if not isinstance(spec, dict):
        raise ValidationFailed("is required, a mapping", path="spec")
    name = check_name(metadata.get("name"), "metadata.name")
    namespace = check_name(metadata.get("namespace", DEFAULT_NAMESPACE), "metadata.namespace").lower()
    for field in REQUIRED_SPEC[kind]:
        if spec.get(field) is None:
            raise ValidationFailed("is required", path=f"spec.{field}")
    properties = {**_metadata_properties(metadata, namespace), **_spec_properties(kind, spec)}
    title = metadata.get("title") or properties.get("displayName") or name
    entity = {"identifier": entity_identifier(namespace, name), "title": _string(title, "metadata.title"),
              "properties": properties, "relations": _relations(kind, spec, namespace)}
    return Descriptor(kind=kind, blueprint=BLUEPRINTS[kind], entity=entity)
