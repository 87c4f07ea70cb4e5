"""What a blueprint's entities show on the pages: the columns a table can have (schema properties,
relations, mirror, calculation and aggregation properties, meta-properties), which are shown by default, which sort,
and how a cell of an entity's JSON (`catalog.selectors.entities.entities_json`) is rendered."""
from dataclasses import dataclass, field
from urllib.parse import quote

from django.utils.html import format_html, format_html_join

from catalog.selectors.sorted_pages import SORTABLE_META
from portal.datetimes import instant_of
from web.catalog_pages.values import EMPTY, datetime_html, value_html

SCHEMA, RELATION, MIRROR, CALCULATION, AGGREGATION, META = ("property", "relation", "mirror", "calculation", "aggregation",
                                                            "meta")
DEFAULT_COLUMNS = 6  # besides the title/identifier column, which is always shown
DEFAULT_COMPUTED = 2  # of those, at most this many mirror/calculation columns
META_COLUMNS = (
    ("$team", "Teams"),
    ("$createdAt", "Created"),
    ("$updatedAt", "Updated"),
    ("$createdBy", "Created by"),
    ("$updatedBy", "Updated by"),
)
SORTABLE_TYPES = {"string", "number", "boolean"}


@dataclass
class Column:
    key: str
    title: str
    kind: str  # SCHEMA, RELATION, MIRROR, CALCULATION, AGGREGATION or META
    definition: dict = field(default_factory=dict)  # the property schema (for a mirror: its target property)
    target: str = ""  # relations: the target blueprint identifier
    note: str = ""  # mirrors: the path; calculations: the jq expression; aggregations: what they count

    @property
    def sortable(self):
        if self.kind == META:
            return self.key in SORTABLE_META
        return self.kind == AGGREGATION or (self.kind == SCHEMA and self.definition.get("type") in SORTABLE_TYPES)

    @property
    def computed(self):
        return self.kind in (MIRROR, CALCULATION, AGGREGATION)

    def cell(self, document, *, full=False):
        """HTML of this column's value in one entity's JSON."""
        if self.kind == RELATION:
            return relation_html(self.target, document["relations"].get(self.key))
        if self.kind == META:
            return meta_html(self.key, document)
        return value_html(document["properties"].get(self.key), self.definition, full=full)


def entity_url(blueprint_identifier, identifier):
    return f"/catalog/{quote(blueprint_identifier, safe='')}/{quote(identifier, safe='')}/"


def blueprint_url(blueprint_identifier):
    return f"/catalog/{quote(blueprint_identifier, safe='')}/"


def team_url(name):
    """The team page (web/catalog_pages/teams.py); a team's name may hold spaces, slashes and other odd characters."""
    return f"/teams/{quote(name, safe='')}/"


def relation_html(target_blueprint, value):
    targets = value if isinstance(value, list) else ([value] if value else [])
    if not targets:
        return EMPTY
    return format_html_join(", ", '<a href="{}">{}</a>', ((entity_url(target_blueprint, t), t) for t in targets))


def meta_html(key, document):
    if key == "$team":
        return format_html_join(" ", '<span class="badge">{}</span>', ((t,) for t in document["team"])) or EMPTY
    value = document.get({"$createdAt": "createdAt", "$updatedAt": "updatedAt", "$createdBy": "createdBy",
                          "$updatedBy": "updatedBy", "$identifier": "identifier", "$title": "title"}[key])
    moment = instant_of(value)
    if moment is not None:
        return datetime_html(moment)
    return format_html("{}", value) if value else EMPTY


def _mirror_definition(blueprint, path, blueprints):
    """The schema of the property a mirror reaches (so enum colours and formats carry over), or {}."""
    steps = str(path or "").split(".")
    current = blueprint
    for step in steps[:-1]:
        target = (current.relations or {}).get(step, {}).get("target") if current is not None else None
        current = blueprints.get(target)
    if current is None or steps[-1].startswith("$"):
        return {"format": "date-time"} if steps[-1] in ("$createdAt", "$updatedAt") else {}
    return current.schema.get("properties", {}).get(steps[-1], {})


def blueprint_columns(blueprint, blueprints=None):
    """Every column a table of `blueprint` can show, in order: schema properties, relations, mirror and
    calculation properties, then meta-properties. `blueprints` ({identifier: Blueprint}) resolves mirrors."""
    blueprints = blueprints or {}
    columns = [Column(key, prop.get("title") or key, SCHEMA, prop)
               for key, prop in blueprint.schema.get("properties", {}).items()]
    columns += [Column(key, rel.get("title") or key, RELATION, target=rel.get("target", ""))
                for key, rel in (blueprint.relations or {}).items()]
    columns += [Column(key, mirror.get("title") or key, MIRROR, _mirror_definition(blueprint, mirror.get("path"), blueprints),
                       note=str(mirror.get("path", "")))
                for key, mirror in (blueprint.mirror_properties or {}).items()]
    columns += [Column(key, calc.get("title") or key, CALCULATION, calc, note=str(calc.get("calculation", "")))
                for key, calc in (blueprint.calculation_properties or {}).items()]
    columns += [Column(key, agg.get("title") or key, AGGREGATION, {"type": "number"}, note=_aggregation_note(agg))
                for key, agg in (blueprint.aggregation_properties or {}).items()]
    columns += [Column(key, title, META, {"format": "date-time"} if key.endswith("At") else {})
                for key, title in META_COLUMNS]
    return columns


def _aggregation_note(aggregation):
    spec = aggregation.get("calculationSpec") or {}
    what = "count" if spec.get("func") == "count" else f"{spec.get('func')} of {spec.get('property') or 'entities'}"
    return f"{what} over related {aggregation.get('target')}" + (" matching a query" if aggregation.get("query") else "")


def default_column_keys(columns):
    """The first schema properties in order, with up to DEFAULT_COMPUTED mirror/calculation values among them."""
    computed = [c.key for c in columns if c.computed][:DEFAULT_COMPUTED]
    schema = [c.key for c in columns if c.kind == SCHEMA][:DEFAULT_COLUMNS - len(computed)]
    if not schema and not computed:
        return ["$team", "$updatedAt"]
    return schema + computed


def needs_blueprint_definitions(blueprint):
    return bool(blueprint.mirror_properties)
