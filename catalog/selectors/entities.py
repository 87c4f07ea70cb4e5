"""Permission-filtered entity reads and the entity JSON the API returns."""
from collections import defaultdict
from functools import cache

from django.db import connection
from django.db.models import Exists, OuterRef, Q

from catalog.access import EVERY_ENTITY, entity_read_rule, user_team_ids
from catalog.models import Entity, Relation
from catalog.selectors.scorecards import scorecard_standings
from portal.errors import NotFound
from portal import jq_fast
from portal.jq import JqError, jq_first_many
from portal.datetimes import instant_text

META_FIELDS = {
    "$identifier": "identifier",
    "$title": "title",
    "$icon": "icon",
    "$createdAt": "created_at",
    "$updatedAt": "updated_at",
    "$createdBy": "created_by",
    "$updatedBy": "updated_by",
}


def entities_visible_to(user, queryset=None, *, blueprint_id=None):
    """Entities the user may read, filtered in the query; `blueprint_id`: the queryset holds only that blueprint's
    entities, and the filter keeps only what restricts them (EntityReadRule.within)."""
    queryset = Entity.objects.all() if queryset is None else queryset
    rule = entity_read_rule(user)
    if blueprint_id is not None:
        rule = rule.within(blueprint_id)
    return queryset if rule.everything else queryset.filter(rule.q())


def entities_owned_by_visible_to(user, *, limit):
    """The newest `limit` entities (stubs aside) the user may read and owns: through one of their teams, or created
    by them; blueprints loaded."""
    label = user.email or user.get_username()
    condition = Q(created_by=label) if label else Q(pk__in=[])
    team_ids = user_team_ids(user)
    if team_ids:
        condition |= Q(Exists(Entity.teams.through.objects.filter(entity_id=OuterRef("pk"), team_id__in=team_ids)))
    queryset = Entity.objects.filter(condition, is_stub=False).select_related("blueprint").order_by("-created_at", "-id")
    return list(entities_visible_to(user, queryset)[:limit])


def entity_team_ids(entity):
    """Ids of the teams owning `entity` (one the caller has read; None: no teams), in one query."""
    if entity is None:
        return set()
    return set(Entity.teams.through.objects.filter(entity_id=entity.pk).values_list("team_id", flat=True))


def entity_get(blueprint, identifier, *, user=None, for_update=False):
    queryset = Entity.objects.filter(blueprint=blueprint, identifier=identifier)
    if user is not None:
        queryset = entities_visible_to(user, queryset)
    if for_update:
        queryset = queryset.select_for_update()
    entity = queryset.first()
    if entity is None:
        raise NotFound(f"Entity {identifier!r} of blueprint {blueprint.identifier!r} was not found.")
    return entity


def entity_get_by_identifiers(blueprint_identifier, identifier, *, user):
    """The hot by-identifier read: blueprint and entity in one query; the blueprint is looked up
    separately only to say which of the two is missing."""
    from catalog.selectors.blueprints import blueprint_get

    queryset = Entity.objects.select_related("blueprint").filter(blueprint__identifier=blueprint_identifier, identifier=identifier)
    entity = entities_visible_to(user, queryset).first()
    if entity is None:
        blueprint = blueprint_get(blueprint_identifier)
        raise NotFound(f"Entity {identifier!r} of blueprint {blueprint.identifier!r} was not found.")
    return entity


RELATIONS_AND_TEAMS_SQL = """
    SELECT r.source_id, r.relation, r.target_id, t.identifier, r.position, r.id
      FROM catalog_relation r JOIN catalog_entity t ON t.id = r.target_id
     WHERE r.source_id = ANY(%(ids)s)
    UNION ALL
    SELECT et.entity_id, NULL, NULL, team.name, 0, 0
      FROM catalog_entity_teams et JOIN catalog_team team ON team.id = et.team_id
     WHERE et.entity_id = ANY(%(ids)s)
    ORDER BY 1, 2, 5, 6, 4
"""


def _relations_and_teams(entity_ids):
    """Both in one round trip (hot path: every entity read); rows with a NULL relation are team names."""
    relations = defaultdict(lambda: defaultdict(list))
    teams = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(RELATIONS_AND_TEAMS_SQL, {"ids": list(entity_ids)})
        for source_id, relation, target_id, name, _, _ in cursor.fetchall():
            if relation is None:
                teams[source_id].append(name)
            else:
                relations[source_id][relation].append((target_id, name))
    return relations, teams


def _teams_by_entity(entity_ids, reads):
    rows = (Entity.teams.through.objects.filter(entity_id__in=entity_ids).filter(reads.q("entity"))
            .values_list("entity_id", "team__name"))
    result = defaultdict(list)
    for entity_id, name in rows.order_by("team__name"):
        result[entity_id].append(name)
    return result


def _mirror_values(blueprint, entity_ids, relations_by_source, reads):
    """{entity_id: {mirror_key: value}} — one query per hop beyond the first, whatever the row count. Only entities
    that `reads` (an EntityReadRule) allows are walked through or read: a mirror through or to an entity the reader
    may not read is null (a `many` one holds null for it, or nothing beyond it)."""
    from catalog.models import Blueprint

    values = defaultdict(dict)
    definitions = {}
    for key, mirror in blueprint.mirror_properties.items():
        steps = mirror["path"].split(".")
        relation_steps, last = steps[:-1], steps[-1]
        # frontier: entity_id -> list of current target ids
        frontier = {eid: [t for t, _ in relations_by_source.get(eid, {}).get(relation_steps[0], [])] for eid in entity_ids}
        target_bp = blueprint.relations.get(relation_steps[0], {}).get("target")
        many = blueprint.relations.get(relation_steps[0], {}).get("many", False)
        for step in relation_steps[1:]:
            ids = {t for targets in frontier.values() for t in targets}
            hop = defaultdict(list)
            edges = Relation.objects.filter(source_id__in=ids, relation=step).filter(reads.q("source"))
            for source_id, target_id in edges.order_by("position").values_list("source_id", "target_id"):
                hop[source_id].append(target_id)
            frontier = {eid: [t for s in targets for t in hop.get(s, [])] for eid, targets in frontier.items()}
            if target_bp not in definitions:
                definitions[target_bp] = Blueprint.objects.filter(identifier=target_bp).values_list("relations", flat=True).first() or {}
            many = many or definitions[target_bp].get(step, {}).get("many", False)
            target_bp = definitions[target_bp].get(step, {}).get("target")
        ids = {t for targets in frontier.values() for t in targets}
        reached = Entity.objects.filter(id__in=ids).filter(reads.q())
        if last == "$team":
            fetched = _teams_by_entity(ids, reads)
        elif last == "$blueprint":
            fetched = dict(reached.values_list("id", "blueprint__identifier"))
        elif last in META_FIELDS:
            fetched = dict(reached.values_list("id", META_FIELDS[last]))
            if last in ("$createdAt", "$updatedAt"):
                fetched = {pk: instant_text(v) for pk, v in fetched.items()}
        else:
            fetched = dict(reached.values_list("id", f"properties__{last}"))
        for eid, targets in frontier.items():
            found = [fetched.get(t) for t in targets]
            values[eid][key] = found if many else (found[0] if found else None)
    return values


def _attach_blueprints(entities):
    """One query for the distinct blueprints of a page, instead of decoding them per row (select_related)."""
    from catalog.models import Blueprint

    missing = {e.blueprint_id for e in entities if not Entity.blueprint.is_cached(e)}
    if missing:
        blueprints = Blueprint.objects.in_bulk(missing)
        for entity in entities:
            if not Entity.blueprint.is_cached(entity):
                entity.blueprint = blueprints[entity.blueprint_id]


def entities_json(entities, *, user, include=(), exclude=(), calculated=True, standings=True):
    """Entity JSON for a list of entities of any blueprints, in a constant number of queries, as `user` may read it:
    mirror values (and so calculations over them) only from entities the user may read. `user` None: the system
    itself (automation events), which reads everything. The caller has checked that `user` may read `entities`.
    `standings=False` leaves out the stored scorecard standings (a caller that has them already)."""
    entities = list(entities)
    if not entities:
        return []
    _attach_blueprints(entities)
    ids = [e.pk for e in entities]
    relations_by_source, teams = _relations_and_teams(ids)
    by_blueprint = defaultdict(list)
    for entity in entities:
        by_blueprint[entity.blueprint_id].append(entity)
    mirrors, reads = {}, None
    for group in by_blueprint.values():
        blueprint = group[0].blueprint
        group_ids = [e.pk for e in group]
        if blueprint.mirror_properties:
            if reads is None:  # only asked when there is a mirror: most entity reads have none
                reads = EVERY_ENTITY if user is None else entity_read_rule(user)
            mirrors.update(_mirror_values(blueprint, group_ids, relations_by_source, reads))
    documents = []
    for entity in entities:
        found = relations_by_source.get(entity.pk, {})
        targets = {key: [identifier for _, identifier in pairs] for key, pairs in found.items()}
        documents.append(_document(entity, targets, teams.get(entity.pk, []), mirrors.get(entity.pk, {})))
    stored = scorecard_standings(entities) if standings else {}
    for entity, doc in zip(entities, documents):
        if standings and entity.blueprint.scorecards:
            doc["scorecards"] = stored.get(entity.pk, {})
    if calculated:
        _apply_calculations(entities, documents)
    return [select_paths(doc, include, exclude) for doc in documents]


def _document(entity, relation_targets, teams, mirror_values):
    """The entity JSON of `entity` (its blueprint loaded) but its scorecards and calculations, from what was read
    for it: `relation_targets` {relation: [target identifiers in order]}, `teams` (names), `mirror_values`
    {mirror key: value}. The key order is the one the API has always written; the search pages' statement
    (catalog/selectors/search_pages.py) writes the same documents in SQL (tests/support/entity_documents.py)."""
    blueprint = entity.blueprint
    relations = {}
    for key, definition in blueprint.relations.items():
        targets = relation_targets.get(key, [])
        relations[key] = targets if definition.get("many") else (targets[0] if targets else None)
    properties = dict(entity.properties)
    for key in blueprint.schema.get("properties", {}):
        properties.setdefault(key, None)
    properties.update(mirror_values)
    for key in blueprint.aggregation_properties or {}:
        properties[key] = (entity.aggregates or {}).get(key)
    return {
        "identifier": entity.identifier,
        "title": entity.title,
        "icon": entity.icon or None,
        "blueprint": blueprint.identifier,
        "team": teams,
        "properties": properties,
        "relations": relations,
        "createdAt": instant_text(entity.created_at),
        "createdBy": entity.created_by,
        "updatedAt": instant_text(entity.updated_at),
        "updatedBy": entity.updated_by,
    }


def _apply_calculations(entities, documents):
    groups = defaultdict(list)
    for entity, doc in zip(entities, documents):
        groups[entity.blueprint_id].append((entity, doc))
    for group in groups.values():
        apply_calculations(group[0][0].blueprint, [doc for _, doc in group])


def apply_calculations(blueprint, documents):
    """Set `blueprint`'s calculation properties in its entities' `documents` (jq over each document), in place; a
    calculation that fails is null, its error under `calculationErrors`. Several calculations that do not read each
    other go to the jq sandbox in one round trip (`_calculated_together`); otherwise, and for a document that could
    not tell, one calculation after the other over all the documents, each seeing the ones before it (as always).
    When every calculation is in the subset of jq portal/jq_fast.py evaluates in the process, in turn, with no round
    trip at all."""
    calculations = blueprint.calculation_properties
    in_process = all(jq_fast.compiled(str(calc["calculation"])) is not None for calc in calculations.values())
    together = (_calculated_together(calculations, documents)
                if len(calculations) > 1 and documents and not in_process else None)
    if together is None:
        _calculated_in_turn(calculations, documents)
        return
    for doc, results in zip(documents, together):
        if results is not None:
            for key, result in zip(calculations, results):
                _calculated_set(doc, key, result)
    _calculated_in_turn(calculations, [doc for doc, results in zip(documents, together) if results is None])


def _calculated_in_turn(calculations, documents):
    for key, calc in calculations.items():
        if not documents:
            return
        try:
            results = jq_first_many(calc["calculation"], documents)
        except JqError as exc:
            results = [exc] * len(documents)
        for doc, result in zip(documents, results):
            _calculated_set(doc, key, result)


def _calculated_set(doc, key, result):
    doc["properties"][key] = None if isinstance(result, JqError) else result
    if isinstance(result, JqError):
        doc.setdefault("calculationErrors", {})[key] = str(result)


def _calculated_one(expression, document):
    try:
        return jq_first_many(expression, [document])[0]
    except JqError as exc:
        return exc


@cache
def _together_expression(expressions):
    """One jq program over a document whose output is a list with a slot per expression: null for no output,
    {"o": its first output}, or {"e": true} for an error (its message is taken from the expression alone)."""
    slots = (f'(try ([limit(1; (\n{expression}\n))] | if length == 0 then null else {{"o": .[0]}} end) catch {{"e": true}})'
             for expression in expressions)
    return "[" + ", ".join(slots) + "]"


def _calculated_together(calculations, documents):
    """For each document, the result of every calculation (a value or JqError) from one jq round trip over all the
    documents, or None for a document to calculate one by one; None for all of them when a calculation may read
    another's result (its key appears in its text) or the program as a whole does not run."""
    expressions = [str(calc["calculation"]) for calc in calculations.values()]
    if any("calculationErrors" in expression or any(key in expression for key in calculations if key != own)
           for own, expression in zip(calculations, expressions)):
        return None
    try:
        outputs = jq_first_many(_together_expression(tuple(expressions)), documents)
    except JqError:
        return None
    together = []
    for doc, output in zip(documents, outputs):
        if not isinstance(output, list) or len(output) != len(expressions):
            together.append(None)
            continue
        slots = []
        for expression, slot in zip(expressions, output):
            if slot is None:
                slots.append(None)
            elif isinstance(slot, dict) and "o" in slot:
                slots.append(slot["o"])
            else:  # it failed: the message it gives alone
                slots.append(_calculated_one(expression, doc))
        together.append(slots)
    return together


def select_paths(document, include=(), exclude=()):
    """Apply repeated `include` / `exclude` query params (dot paths into the entity JSON)."""
    if include:
        picked = {}
        for path in include:
            source, target, parts = document, picked, path.split(".")
            for i, part in enumerate(parts):
                if not isinstance(source, dict) or part not in source:
                    break
                if i == len(parts) - 1:
                    target[part] = source[part]
                else:
                    source = source[part]
                    target = target.setdefault(part, {})
        document = picked
    for path in exclude or ():
        parts, node = path.split("."), document
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return document


def entities_of_datasource_visible_to(user, *, prefix, suffix, before=None):
    """Entities whose datasource starts with `prefix` and ends with `suffix` (an Ocean integration's own:
    `port-ocean/<type>/` … `/<installationId>/exporter`), last written before `before` when given."""
    queryset = Entity.objects.filter(datasource__startswith=prefix, datasource__endswith=suffix).exclude(datasource="")
    if before is not None:
        queryset = queryset.filter(updated_at__lt=before)
    return entities_visible_to(user, queryset.select_related("blueprint"))
