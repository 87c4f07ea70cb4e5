"""A page of `POST /v1/blueprints/{bp}/entities/search`, its entity documents built in one SQL statement; an entity
read by identifier (`entity_document`: GET /v1/blueprints/{bp}/entities/{id}, a deployment report's answer) is the
page of one with that identifier.

The statement selects the page (the compiled rule set, the reader's read rule, the keyset cursor, LIMIT) and writes
the page's `entities` array as JSON text: each row's relations (only the page's rows' relation rows are read), team
names, mirror values (walked as `_mirror_values` walks them, through and from entities the reader may read),
aggregation values and stored scorecard standings. Python parses that text once and runs only what SQL cannot:
calculation properties (jq) and `include`/`exclude`; a page needing neither is answered with the statement's text as
it is, never parsed. The documents are those `entities_json` writes, key for key (tests/support/entity_documents.py
pins it): a key that two parts of a `properties` object name (a stored property a mirror or an aggregation also
names, a mirror named as a schema property) is written once, where it first appears, with the value of the last
part, as `dict.update` leaves it.

The SQL of a rule set is kept per process for the same blueprint definition (its `version`), unless compiling it
read the clock, the caller or the list of every blueprint (catalog.selectors.search.search_condition_sql); the
statement of a kept one is prepared on each connection (portal/prepared_statements.py), so PostgreSQL plans it on
its first executions only (connections live CONN_MAX_AGE, 60 s, which bounds the statements one accumulates). SQL
that read other blueprints (a `relatedTo` source) is kept too: the statement also counts which of those definitions
are unchanged, and a page read with a stale one is read again with the rule set compiled afresh. The page's own
blueprint is the definition this process kept (catalog.selectors.blueprints.blueprint_definition), so reading it costs
no statement: the page's statement also reads the digest of the blueprint's row, and a page read with a definition
that has changed since (any column, by any writer) or was deleted is read again with the definition read afresh.
"""
import json

from django.db import connection

from catalog.access import entity_read_rule
from catalog.selectors.blueprints import DEFINITION_DIGEST, blueprint_definition
from catalog.selectors.entities import apply_calculations, select_paths
from catalog.selectors.search import SCORECARD_PREFIX, ConditionSql, search_condition_sql
from portal.api.pagination import cursor_decode, cursor_encode
from portal.errors import NotFound, ValidationFailed
from portal.kept import KeptValues
from portal.prepared_statements import array_literal, execute_prepared

_kept = KeptValues(256)  # (blueprint pk, version, scorecards, path, rule set as JSON) -> ConditionSql (`_key`)

LARGEST_ID = 2**63 - 1
INSTANT = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""

# The value a mirror reads from the entity `t` it reached along its relation path `s.path` (t.id null: one the reader
# may not read, whose value is null), as the entity JSON writes it (catalog/selectors/entities.py `_mirror_values`).
MIRROR_VALUE_SQL = """CASE WHEN t.id IS NULL THEN NULL ELSE CASE s.path[cardinality(s.path)]
                   WHEN '$team' THEN (SELECT json_agg(tm.name ORDER BY tm.name) FROM catalog_entity_teams et
                                        JOIN catalog_team tm ON tm.id = et.team_id WHERE et.entity_id = t.id)
                   WHEN '$blueprint' THEN (SELECT to_json(tb.identifier) FROM catalog_blueprint tb WHERE tb.id = t.blueprint_id)
                   WHEN '$identifier' THEN to_json(t.identifier)
                   WHEN '$title' THEN to_json(t.title)
                   WHEN '$icon' THEN to_json(t.icon)
                   WHEN '$createdBy' THEN to_json(t.created_by)
                   WHEN '$updatedBy' THEN to_json(t.updated_by)
                   WHEN '$createdAt' THEN to_json(to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                   WHEN '$updatedAt' THEN to_json(to_char(t.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                   ELSE (t.properties->(s.path[cardinality(s.path)]))::json END END"""

# Mirror values of the page's rows, in CTEs after `page`:
# `steps` the mirror paths, `chain` whether each is a list (any `many` hop), `walk` the relation rows along each path
# from every page row, `mirror` each row's values per mirror.
MIRROR_CTES = """, steps AS (
    SELECT s.key, string_to_array(s.path, '.') AS path FROM unnest(%s::text[], %s::text[]) s(key, path)
), chain (key, depth, target, many) AS (
    SELECT s.key, 1, (%s::jsonb)->(s.path[1])->>'target', COALESCE(((%s::jsonb)->(s.path[1])->>'many')::boolean, FALSE)
      FROM steps s
    UNION ALL
    SELECT c.key, c.depth + 1, tb.relations->(s.path[c.depth + 1])->>'target',
           c.many OR COALESCE((tb.relations->(s.path[c.depth + 1])->>'many')::boolean, FALSE)
      FROM chain c JOIN steps s ON s.key = c.key LEFT JOIN catalog_blueprint tb ON tb.identifier = c.target
     WHERE c.depth + 1 < cardinality(s.path)
), walk (entity_id, key, depth, target_id, ord) AS (
    SELECT p.id, s.key, 1, r.target_id, ARRAY[r.position::bigint, r.id]
      FROM shown p CROSS JOIN steps s JOIN catalog_relation r ON r.source_id = p.id AND r.relation = s.path[1]
    UNION ALL
    SELECT w.entity_id, w.key, w.depth + 1, r.target_id, w.ord || ARRAY[r.position::bigint, r.id]
      FROM walk w JOIN steps s ON s.key = w.key
      JOIN catalog_relation r ON r.source_id = w.target_id AND r.relation = s.path[w.depth + 1]
      JOIN catalog_entity src ON src.id = r.source_id
     WHERE w.depth + 1 < cardinality(s.path) AND {readable_src}
), mirror AS (
    SELECT p.id AS entity_id, s.key, c.many, (
        SELECT json_agg(""" + MIRROR_VALUE_SQL + """ ORDER BY w.ord)
          FROM walk w LEFT JOIN catalog_entity t ON t.id = w.target_id AND {readable_t}
         WHERE w.entity_id = p.id AND w.key = s.key AND w.depth = cardinality(s.path) - 1) AS found
      FROM shown p CROSS JOIN steps s JOIN chain c ON c.key = s.key AND c.depth = cardinality(s.path) - 1
)"""

# One row's `properties`: stored ones (in jsonb's order), the schema's missing ones as null, mirrors, aggregations;
# only the stored ones (as stored) when the row has every schema property and the blueprint no mirror or aggregation.
STORED_PROPERTIES = "SELECT s.key, s.value::json AS value, 0 AS part, s.ord FROM jsonb_each(p.properties) WITH ORDINALITY s(key, value, ord)"
SCHEMA_DEFAULTS = "SELECT d.key, NULL, 1, d.ord FROM unnest(%s::text[]) WITH ORDINALITY d(key, ord) WHERE NOT (p.properties ? d.key)"
MIRROR_VALUES = """SELECT s.key, CASE WHEN m.many THEN COALESCE(m.found, '[]'::json) ELSE m.found->0 END, 2, s.ord
          FROM unnest(%s::text[]) WITH ORDINALITY s(key, ord) LEFT JOIN mirror m ON m.entity_id = p.id AND m.key = s.key"""
AGGREGATION_VALUES = "SELECT a.key, (p.aggregates->a.key)::json, 3, a.ord FROM unnest(%s::text[]) WITH ORDINALITY a(key, ord)"


def _properties(blueprint):
    """(SQL, params) of a page row's `properties` object."""
    schema_keys = list(blueprint.schema.get("properties", {}))
    mirror_keys, aggregation_keys = list(blueprint.mirror_properties or {}), list(blueprint.aggregation_properties or {})
    if not (mirror_keys or aggregation_keys or schema_keys):
        return "p.properties::json", []
    parts, params = [STORED_PROPERTIES], []
    for part, keys in ((SCHEMA_DEFAULTS, schema_keys), (MIRROR_VALUES, mirror_keys), (AGGREGATION_VALUES, aggregation_keys)):
        if keys:
            parts.append(part)
            params.append(array_literal(keys))
    union = " UNION ALL ".join(parts)
    if mirror_keys or aggregation_keys:  # a key may come twice: once, at its first place, with its last value
        return (f"COALESCE((SELECT json_object_agg(v.key, v.value ORDER BY v.part, v.ord) FROM ("
                f"SELECT DISTINCT ON (u.key) u.key, u.part, u.ord, last_value(u.value) OVER (PARTITION BY u.key "
                f"ORDER BY u.part, u.ord ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS value "
                f"FROM ({union}) u ORDER BY u.key, u.part, u.ord) v), '{{}}'::json)"), params
    # the schema's missing keys only: none is there twice
    merged = f"COALESCE((SELECT json_object_agg(v.key, v.value ORDER BY v.part, v.ord) FROM ({union}) v), '{{}}'::json)"
    return (f"CASE WHEN p.properties ?& %s::text[] THEN p.properties::json ELSE {merged} END",
            [array_literal(schema_keys), *params])


RELATIONS = """COALESCE((SELECT json_object_agg(k.key, CASE WHEN k.many THEN COALESCE(x.targets, '[]'::json)
                                                         ELSE x.targets->0 END ORDER BY k.ord)
          FROM unnest(%s::text[], %s::boolean[]) WITH ORDINALITY k(key, many, ord) LEFT JOIN (
               SELECT r.relation, json_agg(t.identifier ORDER BY r.position, r.id, t.identifier) AS targets
                 FROM catalog_relation r JOIN catalog_entity t ON t.id = r.target_id
                WHERE r.source_id = p.id GROUP BY r.relation) x ON x.relation = k.key), '{}'::json)"""

# The stored standings on the blueprint's scorecards (in their order; rules in theirs), as scorecard_standing writes.
SCORECARDS = """, 'scorecards', COALESCE((SELECT json_object_agg(c.card->>'identifier', json_build_object(
            'level', sr.level,
            'rules', COALESCE((SELECT json_agg(json_build_object(
                                   'identifier', u.rule->'identifier',
                                   'status', CASE WHEN COALESCE((sr.passed->>(u.rule->>'identifier'))::boolean, FALSE)
                                                  THEN 'SUCCESS' ELSE 'FAILURE' END,
                                   'level', u.rule->'level') ORDER BY u.ord)
                                 FROM jsonb_array_elements(c.card->'rules') WITH ORDINALITY u(rule, ord)), '[]'::json))
            ORDER BY c.ord)
          FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY c(card, ord)
          JOIN catalog_scorecardresult sr ON sr.entity_id = p.id AND sr.scorecard = c.card->>'identifier'), '{}'::json)"""

PAGE_SQL = """WITH RECURSIVE page AS (
    SELECT e.* FROM catalog_entity e
     WHERE e.blueprint_id = %s AND e.id > %s AND ({condition}) AND {readable_e}
     ORDER BY e.id LIMIT %s
), shown AS (
    SELECT * FROM page ORDER BY id LIMIT %s
){mirror_ctes}
SELECT (SELECT json_agg(json_build_object(
            'identifier', p.identifier, 'title', p.title, 'icon', NULLIF(p.icon, ''), 'blueprint', %s::text,
            'team', COALESCE((SELECT json_agg(tm.name ORDER BY tm.name) FROM catalog_entity_teams et
                                JOIN catalog_team tm ON tm.id = et.team_id WHERE et.entity_id = p.id), '[]'::json),
            'properties', {properties},
            'relations', {relations},
            'createdAt', {created_p}, 'createdBy', p.created_by,
            'updatedAt', {updated_p}, 'updatedBy', p.updated_by{scorecards}) ORDER BY p.id)
          FROM shown p)::text,
       (SELECT count(*) FROM page), (SELECT max(id) FROM shown),
       (SELECT count(*) FROM catalog_blueprint d
         WHERE (d.id, d.version) IN (SELECT * FROM unnest(%s::bigint[], %s::integer[]))),
       (SELECT """ + DEFINITION_DIGEST.format("d") + """ FROM catalog_blueprint d WHERE d.id = %s){token_check}
"""
PAGE_COLUMNS = 5  # PAGE_SQL's: documents, rows matched, last id shown, definitions unchanged, the blueprint's digest
# The caller's bearer token checked in the same statement (portal/api/authentication.py TokenCheck): its columns last.
TOKEN_CHECK = ", auth.* FROM (SELECT) AS page_row LEFT JOIN ({}) AS auth ON true"


def _condition(rule_set, *, user, blueprint, path, fresh=False):
    """The ConditionSql of the rule set on the page's row `e`, compiled (always when `fresh`) or kept."""
    key = _key(rule_set, blueprint, path)
    kept = None if fresh else _kept.get(key)
    if kept is not None:
        return kept
    condition = search_condition_sql(rule_set, user=user, blueprint=blueprint, alias="e", path=path)
    if condition.reusable:
        _kept.put(key, condition)
    return condition


def _key(rule_set, blueprint, path):
    """The blueprint's definition is its `version`, but for its scorecards, which change without it (scorecard
    services): a rule set naming a scorecard is kept for the scorecards it was compiled with."""
    rules = json.dumps(rule_set, sort_keys=True)
    scorecards = json.dumps(blueprint.scorecards, sort_keys=True) if SCORECARD_PREFIX in rules else None
    return blueprint.pk, blueprint.version, scorecards, path, rules


def _after(cursor):
    after = cursor_decode(cursor, "from")
    if after is None:
        return 0
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= LARGEST_ID:
        raise ValidationFailed("is not a cursor returned by this API", path="from")
    return after


def _statement(blueprint, condition, rule, *, after, limit, check=None, written=False):
    """(SQL, params) of the page statement; `check` a TokenCheck it runs too; `written`: the rows are the caller's
    own write, shown whatever its read rule (mirrors still walk only what it may read)."""
    # the page's rows are the blueprint's: the read rule keeps only what restricts them (a member reading the whole
    # blueprint: no condition); a mirror walks other blueprints' entities under the whole rule
    readable = {"e": ("TRUE", []) if written else rule.within(blueprint.pk).sql("e"), "src": rule.sql("src"),
                "t": rule.sql("t")}
    mirrors = blueprint.mirror_properties or {}
    relations = blueprint.relations or {}
    # params in placeholder order: the page, the mirror CTEs, then the document
    params = [blueprint.pk, after, *condition.params, *readable["e"][1], limit + 1, limit]
    mirror_ctes = ""
    if mirrors:
        mirror_ctes = MIRROR_CTES.format(readable_src=readable["src"][0], readable_t=readable["t"][0])
        relations_json = json.dumps(relations)
        params += [array_literal(mirrors), array_literal([str(m.get("path", "")) for m in mirrors.values()]),
                   relations_json, relations_json,
                   *readable["src"][1], *readable["t"][1]]
    properties, properties_params = _properties(blueprint)
    params += [blueprint.identifier, *properties_params, array_literal(relations),
               array_literal([bool(d.get("many")) for d in relations.values()])]
    if blueprint.scorecards:
        params.append(json.dumps(blueprint.scorecards))
    params += [array_literal([pk for pk, _ in condition.depends_on]),
               array_literal([version for _, version in condition.depends_on]), blueprint.pk]
    if check is not None:
        params += check.params
    sql = PAGE_SQL.format(condition=condition.text, readable_e=readable["e"][0], mirror_ctes=mirror_ctes,
                          properties=properties, relations=RELATIONS,
                          created_p=INSTANT.format("p.created_at"), updated_p=INSTANT.format("p.updated_at"),
                          scorecards=SCORECARDS if blueprint.scorecards else "",
                          token_check=TOKEN_CHECK.format(check.sql) if check is not None else "")
    return sql, params


def _page(blueprint, condition_of, *, user, after, limit, by_key=False, check=None):
    """(the blueprint as the statement found it, documents text or None, rows matched up to limit + 1, last id shown)
    of the page statement over `blueprint` (as blueprint_definition kept it) with `condition_of(blueprint, fresh,
    user)`'s ConditionSql (planned once when it walks relations, or when `by_key`: a lookup by the unique identifier,
    one index probe whatever it is). The statement also reads the blueprint row's digest and which definitions the
    condition read are unchanged: when either is stale it is run once more, with the definition read afresh and the
    condition compiled afresh (a change meanwhile is then read as it was a moment before, as any read racing a write
    is). A rule set the kept definition refuses is compiled again over the definition read afresh before it is
    refused. `check`: the caller's pending TokenCheck (portal/api/authentication.py), `user` the user it hints at; the
    statement runs it too, and is run again for the user it finds when that is another."""
    rule = entity_read_rule(user)
    for attempt in (0, 1):
        try:
            condition = condition_of(blueprint, attempt > 0, user)
        except ValidationFailed:
            if attempt:
                raise
            # it may be the kept definition that is stale (a scorecard the rule names, added since): refused only
            # by the blueprint as it is now
            blueprint = blueprint_definition(blueprint.identifier, fresh=True)
            condition = condition_of(blueprint, True, user)
        riding = check if check is not None and not check.resolved else None
        with connection.cursor() as db:
            sql, params = _statement(blueprint, condition, rule, after=after, limit=limit, check=riding)
            if condition.reusable:  # prepared once per connection: its planning is not paid per request
                execute_prepared(db, "search_page", sql, params, generic_plan=by_key or condition.walks)
            else:  # read the clock or the caller: one of a kind, not worth a prepared statement
                db.execute(sql, params)
            documents, matched, last, current, digest, *checked = db.fetchone()
        if riding is not None:  # before anything else: 401 when the token no longer stands
            found = riding.resolve(checked)
            if found is not user:  # read for the hinted user, whose row has changed: read again for this one
                user, rule = found, entity_read_rule(found)
                if attempt == 0 and digest == getattr(blueprint, "definition_digest", None):
                    continue
        if attempt:
            break
        if digest != getattr(blueprint, "definition_digest", None):  # changed or deleted since this process read it
            blueprint = blueprint_definition(blueprint.identifier, fresh=True)
        elif current == len(condition.depends_on):
            break
    return blueprint, documents, matched, last


def _answer(blueprint, documents, *, include, exclude, calculated):
    """The documents' JSON text (a list) as the statement wrote it, or parsed and written again after what only
    Python does: calculation properties (jq), `include`/`exclude`."""
    calculated = calculated and bool(blueprint.calculation_properties)
    if not (calculated or include or exclude):
        return documents or "[]"
    documents = json.loads(documents) if documents else []
    if calculated:
        apply_calculations(blueprint, documents)
    if include or exclude:
        documents = [select_paths(document, include, exclude) for document in documents]
    return json.dumps(documents, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def search_page(blueprint, rule_set, *, user, limit, cursor=None, include=(), exclude=(), path="query",
                token_check=None):
    """(the entity documents as JSON text, the next cursor or None) of the page of `blueprint`'s entities (as
    blueprint_definition gave it) matching `rule_set` that `user` may read, after `cursor` (a `next` of an earlier
    page), at most `limit`, ordered by id: one SQL statement, and the caller's read rule (one more for a member, kept
    on the user). ValidationFailed names the field at fault. `token_check`: the caller's pending TokenCheck, run by
    the page's statement (`user` is then the user it hints at)."""
    after = _after(cursor)

    def condition_of(definition, fresh, reader):
        return _condition(rule_set, user=reader, blueprint=definition, path=path, fresh=fresh)

    blueprint, documents, matched, last = _page(blueprint, condition_of, user=user, after=after, limit=limit,
                                                check=token_check)
    text = _answer(blueprint, documents, include=include, exclude=exclude, calculated=True)
    return text, (cursor_encode(last) if matched > limit else None)


def _by_identifier(identifier):
    """The condition of a page of one: the entity by its unique identifier, one index probe whatever it is."""
    return ConditionSql("e.identifier = %s", (identifier,), True)


def _not_found(blueprint, identifier):
    return NotFound(f"Entity {identifier!r} of blueprint {blueprint.identifier!r} was not found.")


def entity_document(blueprint_identifier, identifier, *, user, include=(), exclude=(), calculated=True,
                    token_check=None):
    """The JSON text of entity `identifier` of blueprint `blueprint_identifier`, as `entities_json` writes it: a page
    of one, found by its identifier, so one SQL statement (the hot by-identifier GET). NotFound for a blueprint that
    does not exist, and for an entity that does not or that `user` may not read. `token_check` as for search_page.
    The answer to a write is `written_documents`'."""
    blueprint = blueprint_definition(blueprint_identifier)
    by_identifier = _by_identifier(identifier)
    blueprint, documents, _, _ = _page(blueprint, lambda definition, fresh, reader: by_identifier, user=user, after=0,
                                       limit=1, by_key=True, check=token_check)
    if documents is None:
        raise _not_found(blueprint, identifier)
    return _answer(blueprint, documents, include=include, exclude=exclude, calculated=calculated)[1:-1]  # the one


def written_documents(entities, *, user, include=(), exclude=()):
    """The answer to a write: the JSON texts of `entities` ((blueprint identifier, identifier) pairs, each just
    written by `user`) as `entity_document` writes each, all read in one statement (an entity write answers with one,
    a deployment report with the deployment and the running service). Each is a page of one by identifier, shown
    whatever `user`'s read rule (its own write; mirrors still show only what it may read). When a definition the
    process kept is found stale, it is read afresh and the statement run once more. NotFound for one not there."""
    rule = entity_read_rule(user)
    blueprints = [blueprint_definition(blueprint) for blueprint, _ in entities]
    for attempt in (0, 1):
        pages = [_statement(blueprint, _by_identifier(identifier), rule, after=0, limit=1, written=True)
                 for blueprint, (_, identifier) in zip(blueprints, entities)]
        sql = "SELECT * FROM " + " CROSS JOIN ".join(f"({text}) AS written_{n}" for n, (text, _) in enumerate(pages))
        with connection.cursor() as db:
            execute_prepared(db, "written_documents", sql, [value for _, params in pages for value in params],
                             generic_plan=True)
            row = db.fetchone()
        found = [row[n * PAGE_COLUMNS:(n + 1) * PAGE_COLUMNS] for n in range(len(pages))]
        stale = {n for n, blueprint in enumerate(blueprints)
                 if found[n][4] != getattr(blueprint, "definition_digest", None)}
        if attempt or not stale:
            break
        blueprints = [blueprint_definition(blueprint.identifier, fresh=True) if n in stale else blueprint
                      for n, blueprint in enumerate(blueprints)]
    texts = []
    for blueprint, (_, identifier), (documents, *_) in zip(blueprints, entities, found):
        if documents is None:
            raise _not_found(blueprint, identifier)
        texts.append(_answer(blueprint, documents, include=include, exclude=exclude, calculated=True)[1:-1])
    return texts
