"""Entity search: Port's rule sets compiled to ONE SQL query over catalog_entity.

Public API (entity search routes, action conditions and datasets, scorecards):

- `search_queryset(rule_set, *, user, blueprint=None, base=None, path="") -> QuerySet[Entity]`
- `search_compile(...)` — the same, plus the identifiers of the blueprints the rules can match
  (`matchingBlueprints` of `POST /v1/entities/search`).
- `rules_validate(rule_set, *, blueprints, path="")` — the same checks without building a query,
  for rule sets stored with a definition (conditions, datasets); `blueprints` is the scope.
- `rules_condition(rule_set, *, blueprint, path="")` — a rule set as a boolean expression on the entity row,
  to annotate a queryset with (every scorecard rule of a blueprint evaluated in one query).

Every failure is a `ValidationFailed` (422) whose message starts with the JSON path at fault,
prefixed by `path` (`query.rules[0].rules[1].operator: unknown operator 'equals' ...`).

How it compiles
    Each rule becomes a SQL boolean expression on the entity row; combinators become AND/OR; the
    result is one `WHERE` condition (an Expression whose column references Django relabels, so the
    queryset composes as a subquery or inside `Exists`). Permission filtering is added to the same
    query by `entities_visible_to`. Nothing is filtered in Python; the only queries before the
    search itself are the blueprint definitions (one, skipped when the scope is a blueprint given
    by the caller and the rules name nothing else), the caller's team names when a rule asks for
    `userTeams`, and the permission grants.

    - property equality / `in` / `containsAny` → `properties @> %s::jsonb` (or `@> ANY(...)`),
      served by the GIN `jsonb_path_ops` index `entity_properties_gin`;
    - `$title` / `$identifier` text operators → `UPPER(col) LIKE UPPER(%s)` with `%`, `_` and `\\`
      escaped, served by the trigram indexes on `UPPER(title)` / `UPPER(identifier)`;
    - relation ids, mirror properties and `$team` → correlated `EXISTS` over catalog_relation /
      the team table (both indexed on the entity side);
    - `relatedTo` → `id = ANY(ARRAY(WITH RECURSIVE ...))` over catalog_relation, each step an index
      lookup per walked entity; the walk uses `UNION`, so a cycle adds no new rows and it stops;
    - dates stored in `properties` (ISO strings with an offset) are cast to `timestamptz` after a
      regular-expression guard (`CASE WHEN value ~ iso THEN value::timestamptz END`), so a value
      that is not an ISO date-time is "no date" instead of a query error. Lexicographic
      comparison was rejected: entities may store any UTC offset (`+02:00`), so strings do not
      sort as instants. The write path validates date-time values (portal/datetimes.py) and stores
      them in UTC, so what passes the guard always casts.

Semantics (decided here; tests in tests/catalog/test_search_rules.py pin them)
    - Scope. The blueprints a rule may refer to: the `blueprint` argument if given, else every
      blueprint; an `and` rule set narrows it with its own `$blueprint` rules (`=`/`in` keep,
      `!=`/`notIn` drop), at any depth. A property no blueprint in scope defines is a 422 naming
      `rules[i].property`. A property rule only ever matches entities of blueprints that define
      the property — also when negated: `language != "Go"` does not return entities of
      blueprints that have no `language`.
    - Missing values. Positive operators are false on a missing/null value. Negations are the
      exact complement of their positive operator within those blueprints (`!=` ≡ NOT `=`,
      `notIn` ≡ NOT `in`, `doesNot*` ≡ NOT the positive string operator, `notBetween` ≡ NOT
      `between`, `isEmpty` ≡ NOT `isNotEmpty`, `isNotExpired` ≡ NOT `isExpired`), so an entity
      without the property IS returned by `!=`, `notIn`, `doesNot*`, `notBetween` and
      `isNotExpired` — Port's "missing is not equal".
    - `isEmpty` is true for a missing key, null, "", [] and {}. Meta-properties are never empty
      except `$title`/`$icon` set to "" and `$team` with no teams; a relation id is empty when the
      entity has no target for it; a mirror is empty when no related entity has a non-empty value.
    - Strings. `=`/`in` are case-sensitive exact comparisons; `contains`, `beginsWith`, `endsWith`
      (and their negations) are case-insensitive (PostgreSQL `UPPER` on both sides). Port spells the
      negations `doesNotContain`/`doesNotBeginWith`/`doesNotEndWith`; both spellings are accepted.
      Text operators apply to string properties and to `$identifier`, `$title`, `$icon`,
      `$createdBy`, `$updatedBy`.
    - Numbers. `=`/`in` on a number property compare numerically (5 matches 5.0); a numeric string
      value ("5") is accepted. `>`, `>=`, `<`, `<=` apply to number properties and to date-time
      properties / `$createdAt` / `$updatedAt` (value an ISO date-time). Values of another JSON
      type never compare.
    - Booleans: `=`/`!=` with true/false (or "true"/"false"). Arrays: `containsAny` (any of the
      given values is an element), `=` with a list (exactly that array). Objects: `=` exact.
    - Dates. `between`/`notBetween` apply to date-time and timer properties and to `$createdAt`/
      `$updatedAt`; value `{"from", "to"}` (ISO 8601; either may be omitted for an open end; both
      ends inclusive; a date without a time as `to` includes that whole day; no offset means UTC)
      or `{"preset": ...}`. Presets are computed in UTC from `timezone.now()` when the query is
      built: `today`/`tomorrow`/`yesterday` are that calendar day [00:00, next 00:00);
      `lastDay`, `lastWeek`, `last2Weeks` are the last 1/7/14 days up to now; `lastMonth`,
      `last3Months`, `last6Months`, `last12Months` go back that many calendar months (day clamped
      to the month's length) up to now. `=`/`!=` with such an object value mean between/notBetween;
      `=` with a string compares the stored string exactly.
    - Timers: `isExpired` is true when the timer property holds a date-time at or before now;
      `isNotExpired` is its negation (so an entity without the timer is "not expired").
    - `$team`: `=`/`in`/`containsAny` → owned by any of the named teams; `!=`/`notIn` → by none
      of them. `$blueprint`: `=`/`in`/`!=`/`notIn` with blueprint identifiers (an unknown one
      is a 422) — and they narrow the scope as above.
    - Relation ids: `{"property": "domain", "operator": "=", "value": "Orders"}` matches entities
      whose `domain` relation targets `Orders`; `in`/`containsAny` with a list: any of them;
      `!=`/`notIn`: none of them (entities without the relation included); `isEmpty`/`isNotEmpty`.
    - Mirror properties: the rule applies to the values reached along the mirror's relation chain
      (`EXISTS` some related entity whose value satisfies the positive operator; negations are
      `NOT EXISTS`). The chain passes through, and reads from, entities the caller may read only (the
      rule of `entities_visible_to`): to the caller a mirror through or to an entity they may not read
      is null, as in the entity JSON, so a filter cannot confirm a value they may not see.
      Aggregation properties are numbers kept in the `aggregates` column and compare as number properties;
      calculation properties are computed when entities are rendered and cannot be searched in SQL: 422.
    - `relatedTo` `{"blueprint", "value": id | [ids], "direction", "required"}`: the named
      entities are the sources. `upstream` (default) returns what the sources depend on, following
      source→target edges outward; `downstream` returns what depends on them, following edges
      backwards; any depth, at least one hop (a source itself is returned only when reachable
      from a source, e.g. through a cycle). `required: true` walks only relations defined
      `required`, `false` only optional ones, absent: all. Unknown source identifiers match
      nothing; an unknown blueprint is a 422.
    - `$scorecard.<id>` (ours; Port's public docs name no search rule for it): an entity's level on that
      scorecard of its blueprint. `=`/`in` a level, `>`, `>=`, `<`, `<=` in the scorecard's order of levels
      (`>= Silver`: Silver or above), `isNotEmpty` (rated at all); negations are the complement, so an entity
      the scorecard's filter leaves out matches `!=` and `isEmpty`. A level the scorecard lacks is a 422.
    - Context values `{"context": "user", "property": "$identifier"}` → the caller's email
      (`$team` → the caller's team names); `{"context": "userTeams"}` → the caller's team names.
      A list from a context turns `=`/`!=` into `in`/`notIn`. With no caller (system use) the
      context is the empty list: `=` matches nothing, `!=` everything.
    - An empty `and` matches everything, an empty `or` nothing. At most 20 levels of nesting,
      500 rules and 1000 values per list.
    - `user=None` means the system itself (automations, internal checks): no permission filter.
      Views always pass `request.user`.
"""
import calendar
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from datetime import timezone as dt_timezone

from django.db import connection
from django.db.models import BooleanField, Expression, F
from django.utils import timezone

from catalog.access import EVERY_ENTITY, entity_read_rule
from catalog.models import Blueprint, Entity, Relation, ScorecardResult, Team
from catalog.selectors.entities import entities_visible_to
from portal.datetimes import NotAnInstant, instant_canonical, instant_field, instant_text
from portal.errors import ValidationFailed

MAX_DEPTH = 20
MAX_RULES = 500
MAX_VALUES = 1000

ENTITY_TABLE = Entity._meta.db_table
BLUEPRINT_TABLE = Blueprint._meta.db_table
RELATION_TABLE = Relation._meta.db_table
ENTITY_TEAMS_TABLE = Entity.teams.through._meta.db_table
TEAM_TABLE = Team._meta.db_table
SCORECARD_RESULT_TABLE = ScorecardResult._meta.db_table

# negated operator -> the positive operator it is the complement of
NEGATIONS = {
    "!=": "=",
    "notIn": "in",
    "doesNotContains": "contains",
    "doesNotContain": "contains",
    "doesNotBeginsWith": "beginsWith",
    "doesNotBeginWith": "beginsWith",
    "doesNotEndsWith": "endsWith",
    "doesNotEndWith": "endsWith",
    "notBetween": "between",
    "isEmpty": "isNotEmpty",
    "isNotExpired": "isExpired",
}
POSITIVE_OPERATORS = ("=", "in", "containsAny", "contains", "beginsWith", "endsWith", ">", ">=", "<", "<=",
                      "between", "isNotEmpty", "isExpired")
OPERATORS = POSITIVE_OPERATORS + tuple(NEGATIONS) + ("relatedTo",)
VALUELESS = {"isNotEmpty", "isExpired"}
COMPARISONS = {">": ">", ">=": ">=", "<": "<", "<=": "<="}
LIKE_SHAPES = {"contains": "%{}%", "beginsWith": "{}%", "endsWith": "%{}"}

SCHEMA_OPERATORS = {
    "string": {"=", "in", "contains", "beginsWith", "endsWith", "isNotEmpty"},
    "number": {"=", "in", ">", ">=", "<", "<=", "isNotEmpty"},
    "boolean": {"=", "in", "isNotEmpty"},
    "array": {"=", "containsAny", "isNotEmpty"},
    "object": {"=", "isNotEmpty"},
}
DATE_FORMATS = {"date-time", "timer"}
DATE_OPERATORS = {">", ">=", "<", "<=", "between"}

TEXT_META = {"$identifier": "identifier", "$title": "title", "$icon": "icon", "$createdBy": "created_by",
             "$updatedBy": "updated_by", "$datasource": "datasource"}
DATE_META = {"$createdAt": "created_at", "$updatedAt": "updated_at"}
META_PROPERTIES = (*TEXT_META, *DATE_META, "$team", "$blueprint")
SCORECARD_PREFIX = "$scorecard."  # `$scorecard.<identifier>`: an entity's level on that scorecard
SCORECARD_OPERATORS = {"=", "in", ">", ">=", "<", "<=", "isNotEmpty"}
TEXT_META_OPERATORS = {"=", "in", "contains", "beginsWith", "endsWith", "isNotEmpty"}
DATE_META_OPERATORS = {"=", "in", ">", ">=", "<", "<=", "between", "isNotEmpty"}
TEAM_OPERATORS = {"=", "in", "containsAny", "isNotEmpty"}
BLUEPRINT_OPERATORS = {"=", "in", "isNotEmpty"}
RELATION_OPERATORS = {"=", "in", "containsAny", "isNotEmpty"}

PRESETS = ("today", "tomorrow", "yesterday", "lastDay", "lastWeek", "last2Weeks", "lastMonth", "last3Months",
           "last6Months", "last12Months")
# What PostgreSQL casts to timestamptz without error, given a valid calendar date (the write path checks it).
ISO_DATETIME_RE = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$"
CANONICAL_INSTANT = "____-__-__T__:__:__.___Z"  # LIKE pattern of instant_text's shape
DATE_ONLY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TOKEN_RE = re.compile(r"⟨(\w+)⟩")


def _fail(path, message):
    raise ValidationFailed(message, path=path)


def _at(path, key):
    return f"{path}.{key}" if path else key


# -- SQL pieces --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sql:
    """A boolean SQL expression and its parameters, in placeholder order."""

    text: str
    params: tuple = ()


TRUE, FALSE = _Sql("TRUE"), _Sql("FALSE")


def _sql(text, *params):
    return _Sql(text, tuple(params))


def _and(parts):
    parts = [p for p in parts if p != TRUE]
    if FALSE in parts:
        return FALSE
    if not parts:
        return TRUE
    if len(parts) == 1:
        return parts[0]
    return _Sql(" AND ".join(f"({p.text})" for p in parts), tuple(x for p in parts for x in p.params))


def _or(parts):
    parts = [p for p in parts if p != FALSE]
    if TRUE in parts:
        return TRUE
    if not parts:
        return FALSE
    if len(parts) == 1:
        return parts[0]
    return _Sql(" OR ".join(f"({p.text})" for p in parts), tuple(x for p in parts for x in p.params))


def _not(part):
    if part == TRUE:
        return FALSE
    if part == FALSE:
        return TRUE
    # COALESCE: a positive predicate that is NULL on a missing value must make its negation true.
    return _Sql(f"NOT COALESCE(({part.text}), FALSE)", part.params)


def _wrap(prefix, part, suffix):
    return _Sql(f"{prefix}{part.text}{suffix}", part.params)


class _Ref:
    """How SQL names a column of the entity a predicate is about: the searched row (a token that
    `EntityCondition` replaces with Django's alias) or a row of a subquery (`_mt3."title"`)."""

    def __init__(self, alias=None):
        self.alias = alias

    def __call__(self, column):
        return f"⟨{column}⟩" if self.alias is None else f'{self.alias}."{column}"'

    @property
    def outer(self):
        return self.alias is None


class EntityCondition(Expression):
    """A compiled rule set as a WHERE condition on Entity. Column references are real expressions
    (F → Col), so Django relabels them when the queryset becomes a subquery."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, sql, params=()):
        super().__init__(output_field=BooleanField())
        self.sql, self.params = sql, tuple(params)
        self.columns = sorted(set(TOKEN_RE.findall(sql)))
        self.sources = [F(column) for column in self.columns]

    def get_source_expressions(self):
        return self.sources

    def on(self, alias):
        """(SQL, params) of the condition on the catalog_entity row named `alias` in hand-written SQL."""
        return TOKEN_RE.sub(lambda match: f'{alias}."{match.group(1)}"', self.sql), list(self.params)

    def set_source_expressions(self, exprs):
        self.sources = list(exprs)

    def as_sql(self, compiler, connection):
        sql = self.sql
        for column, source in zip(self.columns, self.sources):
            column_sql, column_params = compiler.compile(source)
            assert not column_params, "entity columns compile without parameters"
            sql = sql.replace(f"⟨{column}⟩", column_sql)
        return f"({sql})", list(self.params)


# -- values ------------------------------------------------------------------------------------------


def _json(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _like(shape, text):
    return LIKE_SHAPES[shape].format(connection.ops.prep_for_like_query(text))


def _as_list(value, path, *, what="values"):
    values = value if isinstance(value, list) else [value]
    if len(values) > MAX_VALUES:
        _fail(path, f"at most {MAX_VALUES} {what}")
    return values


def _string(value, path):
    if not isinstance(value, str):
        _fail(path, f"must be a string, got {_json_type(value)}")
    return value


def _strings(value, path):
    values = _as_list(value, path)
    for i, item in enumerate(values):
        _string(item, f"{path}[{i}]" if isinstance(value, list) else path)
    return values


def _number(value, path):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        _fail(path, f"must be a number, got {_json_type(value)}")
    if isinstance(value, str):
        try:
            value = int(value) if re.fullmatch(r"[+-]?\d+", value.strip()) else float(value)
        except ValueError:
            _fail(path, f"must be a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            _fail(path, f"must be a finite number, got {value!r}")
    return value


def _boolean(value, path):
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    _fail(path, f"must be true or false, got {_json_type(value)}")


def _scalar(value, path):
    if isinstance(value, (str, bool, int, float)):
        return value
    _fail(path, f"must be a string, number or boolean, got {_json_type(value)}")


def _json_type(value):
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__)


def _datetime(value, path):
    """A rule's date value: the portal's one date-time type, with a bare date or no offset meaning UTC."""
    return instant_field(value, path, query=True)


def _canonical_first(stored, low, high, condition):
    """`condition` on the instant of the date-time text `stored`, false at once for text in the canonical shape
    (instant_text's: what the write path stores) outside [low, high] compared as text: such text sorts as the
    instants it names, so most rows of a range search skip the regular-expression guard and the cast. The rest
    (inside the bounds, another shape, or not a date at all) are decided by `condition`, so the result is the same
    but for FALSE where `condition` is NULL, which no rule tells apart (a negation is `NOT COALESCE(..., FALSE)`)."""
    outside, params = [], []
    for moment, comparison in ((low, "<"), (high, ">")):
        if moment is not None and 1000 <= moment.year <= 9999:  # four-digit years sort as text
            outside.append(f'{stored.text} COLLATE "C" {comparison} %s')
            params += [*stored.params, instant_text(moment)]
    if not outside:
        return condition
    return _Sql(f"CASE WHEN {stored.text} LIKE %s AND ({' OR '.join(outside)}) THEN FALSE ELSE {condition.text} END",
                (*stored.params, CANONICAL_INSTANT, *params, *condition.params))


def _stored_dates(value):
    """`=`/`in` values of a date-time property as stored (canonical text), so `...18Z` finds `...18.000Z`;
    what is not a date-time is compared as it is."""
    if isinstance(value, list):
        return [_stored_dates(item) for item in value]
    try:
        return instant_canonical(value)
    except NotAnInstant:
        return value


def _months_back(moment, months):
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _preset_range(preset, now):
    """(from, to, bounds) in UTC; day presets are half-open calendar days, `last*` end at now."""
    midnight = now.astimezone(dt_timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    days = {"today": (midnight, midnight + day), "tomorrow": (midnight + day, midnight + 2 * day),
            "yesterday": (midnight - day, midnight)}
    if preset in days:
        return (*days[preset], "[)")
    back = {"lastDay": now - day, "lastWeek": now - 7 * day, "last2Weeks": now - 14 * day,
            "lastMonth": _months_back(now, 1), "last3Months": _months_back(now, 3),
            "last6Months": _months_back(now, 6), "last12Months": _months_back(now, 12)}
    return back[preset], now, "[]"


def _is_range_value(value):
    return isinstance(value, dict) and ("preset" in value or "from" in value or "to" in value)


# -- the blueprint definitions a rule set can name ---------------------------------------------------


class _Catalog:
    """Blueprint definitions by identifier. Blueprints handed in are used as they are (they may be
    unsaved definitions being validated); the rest are read with one query, only when needed."""

    FIELDS = ("id", "identifier", "version", "schema", "relations", "mirror_properties", "calculation_properties",
              "aggregation_properties", "scorecards")

    def __init__(self, given=()):
        self.given = {bp.identifier: bp for bp in given}
        self.loaded = None
        self.read = {}  # {identifier: (pk, version)} of the blueprints read that were not handed in
        self.listed = False  # whether every blueprint's identifier was asked for

    def _load(self):
        if self.loaded is None:
            self.loaded = {bp.identifier: bp for bp in Blueprint.objects.only(*self.FIELDS)}
            self.loaded.update(self.given)
        return self.loaded

    def get(self, identifier):
        if not isinstance(identifier, str):
            return None
        if identifier in self.given:
            return self.given[identifier]
        blueprint = self._load().get(identifier)
        if blueprint is not None:
            self.read[identifier] = (blueprint.pk, blueprint.version)
        return blueprint

    def identifiers(self):
        self.listed = True
        return set(self._load())


# -- the compiler ------------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, *, catalog, user, now, resolve_context=True, searched_blueprint=None):
        self.catalog, self.user, self._now = catalog, user, now
        # the pk of the one blueprint the statement already restricts the searched row to, if it does
        self.searched_blueprint = searched_blueprint
        self.read_clock = False  # whether the SQL depends on the time it was compiled at (presets, timers)
        self.read_caller = False  # whether it depends on who compiled it (read rule, email, team names)
        self.walked = False  # whether it walks relations (`relatedTo`): see ConditionSql.walks
        self.resolve_context = resolve_context
        self.aliases = 0
        self._team_names = None
        self._reads = None

    @property
    def now(self):
        self.read_clock = True
        return self._now

    @property
    def reads(self):
        """The EntityReadRule of the caller (the system, with no caller or when validating: everything)."""
        self.read_caller = True
        if self._reads is None:
            self._reads = (entity_read_rule(self.user) if self.user is not None and self.resolve_context
                           else EVERY_ENTITY)
        return self._reads

    def alias(self, prefix):
        self.aliases += 1
        return f"_{prefix}{self.aliases}"

    # rule sets

    def rule_set(self, node, path, scope, depth=1):
        """(sql, scope after this rule set's own `$blueprint` narrowing)."""
        if not isinstance(node, dict):
            _fail(path or "body", 'must be a rule set {"combinator": "and" | "or", "rules": [...]}')
        if depth > MAX_DEPTH:
            _fail(path or "body", f"rule sets nest deeper than {MAX_DEPTH} levels")
        combinator = node.get("combinator")
        if combinator not in ("and", "or"):
            _fail(_at(path, "combinator"), f'must be "and" or "or", got {combinator!r}')
        rules = node.get("rules")
        if not isinstance(rules, list):
            _fail(_at(path, "rules"), "must be a list of rules")
        if combinator == "and":
            scope = self.narrow(scope, rules, path)
        parts = [self.rule(rule, f"{_at(path, 'rules')}[{i}]", scope, depth) for i, rule in enumerate(rules)]
        return (_and(parts) if combinator == "and" else _or(parts)), scope

    def narrow(self, scope, rules, path):
        """The `$blueprint` rules directly in an `and` keep or drop blueprints from the scope."""
        for i, rule in enumerate(rules):
            if not (isinstance(rule, dict) and rule.get("property") == "$blueprint"):
                continue
            operator = rule.get("operator")
            if operator not in ("=", "in", "!=", "notIn"):
                continue
            value_path = f"{_at(path, 'rules')}[{i}].value"
            named = set(self.blueprint_identifiers(self.context(rule.get("value"), value_path), value_path))
            scope = scope & named if operator in ("=", "in") else scope - named
        return scope

    def blueprint_identifiers(self, value, path):
        identifiers = _strings(value, path)
        for i, identifier in enumerate(identifiers):
            if self.catalog.get(identifier) is None:
                _fail(f"{path}[{i}]" if isinstance(value, list) else path, f"blueprint {identifier!r} does not exist")
        return identifiers

    def rule(self, node, path, scope, depth):
        if isinstance(node, dict) and ("combinator" in node or "rules" in node):
            return self.rule_set(node, path, scope, depth + 1)[0]
        if not isinstance(node, dict):
            _fail(path, "must be a rule {property, operator, value} or a rule set {combinator, rules}")
        operator = node.get("operator")
        if not isinstance(operator, str) or operator not in OPERATORS:
            _fail(_at(path, "operator"), f"unknown operator {operator!r}; expected one of {', '.join(OPERATORS)}")
        if operator == "relatedTo":
            return self.related_to(node, path)
        prop = node.get("property")
        if not isinstance(prop, str) or not prop:
            _fail(_at(path, "property"), "is required: a property, relation or mirror identifier, or a meta-property "
                                         "such as $identifier")
        positive = NEGATIONS.get(operator, operator)
        value = None
        if positive not in VALUELESS:
            if "value" not in node:
                _fail(_at(path, "value"), f"is required by operator {operator!r}")
            value = self.context(node["value"], _at(path, "value"))
            if isinstance(node["value"], dict) and "context" in node["value"] and isinstance(value, list):
                positive = {"=": "in"}.get(positive, positive)
        return self.property_rule(prop, positive, operator in NEGATIONS, value, operator, path, scope)

    # context values

    def context(self, value, path):
        if not (isinstance(value, dict) and "context" in value):
            return value
        kind, prop = value.get("context"), value.get("property", "$identifier")
        self.read_caller = True
        if kind == "user":
            if prop in ("$identifier", "$email"):
                email = getattr(self.user, "email", None) if self.resolve_context else None
                return email if email else []
            if prop == "$title":
                user = self.user if self.resolve_context else None
                title = (user.get_full_name() or user.email) if user is not None and user.is_authenticated else None
                return title if title else []
            if prop == "$team":
                return self.team_names()
            _fail(_at(path, "property"), f"{prop!r} is not a user context property ($identifier, $title, $team)")
        if kind == "userTeams":
            if prop in ("$identifier", "$title", "$team"):
                return self.team_names()
            _fail(_at(path, "property"), f"{prop!r} is not a userTeams context property ($identifier, $title)")
        _fail(_at(path, "context"), f'must be "user" or "userTeams", got {kind!r}')

    def team_names(self):
        if self._team_names is None:
            user = self.user if self.resolve_context else None
            if user is None or not user.is_authenticated:
                self._team_names = []
            else:
                self._team_names = list(Team.objects.filter(group__user=user).order_by("name").values_list("name", flat=True))
        return list(self._team_names)

    # property rules

    def property_rule(self, prop, positive, negated, value, operator, path, scope):
        ref = _Ref()
        if prop.startswith(SCORECARD_PREFIX):
            return self.scorecard_rule(prop[len(SCORECARD_PREFIX):], positive, negated, value, operator, path, scope, ref)
        if prop.startswith("$"):
            result = self.meta(prop, positive, value, operator, path, ref)
            return _not(result) if negated else result
        kinds = {}
        for identifier in sorted(scope):
            blueprint = self.catalog.get(identifier)
            kind = self.kind_of(blueprint, prop)
            if kind is not None:
                kinds[identifier] = kind
        computed = [(i, k) for i, k in kinds.items() if k[0] == "calculation"]
        if computed:
            identifier, _ = computed[0]
            _fail(_at(path, "property"), f"{prop!r} is a calculation property of blueprint {identifier!r}: it is "
                                         "computed when entities are rendered and cannot be searched")
        if not kinds:
            where = (f"blueprint {next(iter(scope))!r}" if len(scope) == 1
                     else "any blueprint in scope" if scope else "any blueprint (no blueprint is in scope)")
            _fail(_at(path, "property"), f"{prop!r} is not a property, relation or mirror property of {where}")
        groups = {}
        for identifier, kind in kinds.items():
            groups.setdefault(self.signature(identifier, kind), []).append(identifier)
        parts = []
        for identifiers in groups.values():
            blueprint = self.catalog.get(identifiers[0])
            predicate = self.leaf(blueprint, prop, kinds[identifiers[0]], positive, value, operator, path, ref)
            ids = [self.catalog.get(i).pk for i in identifiers]
            parts.append(_and([self.searched_in(ref, ids), _not(predicate) if negated else predicate]))
        return _or(parts)

    def searched_in(self, ref, ids):
        """The searched row `ref` is an entity of one of the blueprints `ids`: TRUE when the statement already
        keeps it to that one blueprint (a second `blueprint_id` filter would only skew the planner's estimate of how
        many rows match: it multiplies the two selectivities, and picks a bitmap AND of both indexes)."""
        if self.searched_blueprint is not None and list(ids) == [self.searched_blueprint]:
            return TRUE
        return _sql(f"{ref('blueprint_id')} = ANY(%s::bigint[])", ids)

    @staticmethod
    def kind_of(blueprint, prop):
        if prop in blueprint.schema.get("properties", {}):
            return "schema", blueprint.schema["properties"][prop]
        if prop in (blueprint.mirror_properties or {}):
            return "mirror", blueprint.mirror_properties[prop]
        if prop in (blueprint.relations or {}):
            return "relation", blueprint.relations[prop]
        if prop in (blueprint.calculation_properties or {}):
            return "calculation", blueprint.calculation_properties[prop]
        if prop in (blueprint.aggregation_properties or {}):
            return "aggregation", blueprint.aggregation_properties[prop]
        return None

    def signature(self, identifier, kind):
        """Blueprints whose definitions of a property compile alike share one SQL branch."""
        name, definition = kind
        if name == "schema":
            items = definition.get("items") if isinstance(definition.get("items"), dict) else {}
            return name, definition.get("type"), definition.get("format"), items.get("type")
        if name == "mirror":
            return name, identifier  # the chain starts from this blueprint's own relations
        if name == "relation":
            return name, definition.get("target")
        return (name,)

    def leaf(self, blueprint, prop, kind, positive, value, operator, path, ref):
        name, definition = kind
        if name == "schema":
            return self.schema_leaf(prop, definition, positive, value, operator, path, ref)
        if name == "aggregation":  # a number kept in the `aggregates` column (catalog/services/aggregations.py)
            return self.schema_leaf(prop, {"type": "number"}, positive, value, operator, path, ref, column="aggregates")
        if name == "relation":
            return self.relation_leaf(prop, definition.get("target"), positive, value, operator, path, ref)
        return self.mirror_leaf(blueprint, prop, definition, positive, value, operator, path, ref)

    def meta(self, prop, positive, value, operator, path, ref):
        if prop in TEXT_META:
            self.allow(positive, TEXT_META_OPERATORS, operator, f"meta-property {prop}", path)
            return self.text_column(ref(TEXT_META[prop]), positive, value, _at(path, "value"))
        if prop in DATE_META:
            self.allow(positive, DATE_META_OPERATORS, operator, f"meta-property {prop}", path)
            column = ref(DATE_META[prop])
            if positive == "isNotEmpty":
                return TRUE
            if positive in ("=", "in") and not _is_range_value(value):
                moments = [_datetime(v, _at(path, "value")) for v in _as_list(value, _at(path, "value"))]
                return _sql(f"{column} = ANY(%s::timestamptz[])", moments)
            return self.date_comparison(_Sql(column), "between" if positive in ("=", "in") else positive, value,
                                        _at(path, "value"))
        if prop == "$team":
            self.allow(positive, TEAM_OPERATORS, operator, "meta-property $team", path)
            return self.team_leaf(positive, value, _at(path, "value"), ref)
        if prop == "$blueprint":
            self.allow(positive, BLUEPRINT_OPERATORS, operator, "meta-property $blueprint", path)
            if positive == "isNotEmpty":
                return TRUE
            identifiers = self.blueprint_identifiers(value, _at(path, "value"))
            return _sql(f"{ref('blueprint_id')} = ANY(%s::bigint[])", [self.catalog.get(i).pk for i in identifiers])
        _fail(_at(path, "property"), f"{prop!r} is not a meta-property (one of {', '.join(META_PROPERTIES)})")

    @staticmethod
    def allow(positive, allowed, operator, what, path):
        if positive not in allowed:
            _fail(_at(path, "operator"), f"{operator!r} does not apply to {what}")

    def text_column(self, column, positive, value, path):
        if positive == "isNotEmpty":
            return _sql(f"{column} <> ''")
        if positive in LIKE_SHAPES:
            return _sql(f"UPPER({column}) LIKE UPPER(%s)", _like(positive, _string(value, path)))
        if positive == "=" and not isinstance(value, list):
            return _sql(f"{column} = %s", _string(value, path))
        return _sql(f"{column} = ANY(%s::text[])", _strings(value, path))

    def schema_leaf(self, key, prop, positive, value, operator, path, ref, column="properties"):
        ptype, fmt = prop.get("type"), prop.get("format")
        allowed = set(SCHEMA_OPERATORS.get(ptype, {"isNotEmpty"}))
        if ptype == "string" and fmt in DATE_FORMATS:
            allowed |= DATE_OPERATORS
            if fmt == "timer":
                allowed.add("isExpired")
        described = f"{ptype} property {key!r}" + (f" (format {fmt})" if fmt else "")
        if positive == "=" and ptype == "string" and fmt in DATE_FORMATS and _is_range_value(value):
            positive = "between"
        self.allow(positive, allowed, operator, described, path)
        column, value_path = ref(column), _at(path, "value")
        if positive == "isNotEmpty":
            return _sql(f"COALESCE({column} -> %s, 'null'::jsonb) NOT IN "
                        "('null'::jsonb, '\"\"'::jsonb, '[]'::jsonb, '{}'::jsonb)", key)
        if positive in ("=", "in") and fmt in DATE_FORMATS:
            value = _stored_dates(value)
        if positive in ("=", "in", "containsAny"):
            return self.json_equality(column, key, ptype, positive, value, value_path)
        if positive in LIKE_SHAPES:
            return _sql(f"UPPER({column} ->> %s) LIKE UPPER(%s)", key, _like(positive, _string(value, value_path)))
        if ptype == "number":
            return _sql(f"(CASE WHEN jsonb_typeof({column} -> %s) = 'number' THEN ({column} ->> %s)::numeric END) "
                        f"{COMPARISONS[positive]} %s::numeric", key, key, _number(value, value_path))
        expression = _sql(f"(CASE WHEN jsonb_typeof({column} -> %s) = 'string' AND ({column} ->> %s) ~ %s "
                          f"THEN ({column} ->> %s)::timestamptz END)", key, key, ISO_DATETIME_RE, key)
        if positive == "isExpired":
            return _Sql(f"{expression.text} <= %s", expression.params + (self.now,))
        return self.date_comparison(expression, positive, value, value_path, stored=_sql(f"({column} ->> %s)", key))

    def json_equality(self, column, key, ptype, positive, value, path):
        if positive == "containsAny":
            values = [_scalar(v, f"{path}[{i}]" if isinstance(value, list) else path)
                      for i, v in enumerate(_as_list(value, path))]
            return _sql(f"{column} @> ANY(%s::jsonb[])", [_json({key: [v]}) for v in values])
        coerce = {"string": _string, "number": _number, "boolean": _boolean}.get(ptype)
        if positive == "in":
            values = _as_list(value, path)
            values = [coerce(v, f"{path}[{i}]" if isinstance(value, list) else path) for i, v in enumerate(values)]
            return _sql(f"{column} @> ANY(%s::jsonb[])", [_json({key: v}) for v in values])
        if ptype in ("array", "object"):
            expected = list if ptype == "array" else dict
            if not isinstance(value, expected):
                _fail(path, f"must be {'an array' if ptype == 'array' else 'an object'}, got {_json_type(value)}")
            # @> finds candidates through the GIN index; the equality makes it exact (@> alone is containment).
            return _sql(f"{column} @> %s::jsonb AND {column} -> %s = %s::jsonb", _json({key: value}), key, _json(value))
        return _sql(f"{column} @> %s::jsonb", _json({key: coerce(value, path)}))

    def date_comparison(self, expression, positive, value, path, stored=None):
        """`expression` (an instant) compared with the rule's value; `stored`: the text the instant was cast from (a
        date-time property), which then decides first the rows it can (`_canonical_first`)."""
        if positive in COMPARISONS:
            moment = _datetime(value, path)
            condition = _Sql(f"{expression.text} {COMPARISONS[positive]} %s", expression.params + (moment,))
            low, high = (moment, None) if positive in (">", ">=") else (None, moment)
        else:
            low, high, bounds = self.date_range(value, path)
            condition = _Sql(f"tstzrange(%s, %s, %s) @> {expression.text}", (low, high, bounds) + expression.params)
        return condition if stored is None else _canonical_first(stored, low, high, condition)

    def date_range(self, value, path):
        if not isinstance(value, dict):
            _fail(path, 'must be {"from": date, "to": date} or {"preset": ...}')
        if "preset" in value:
            preset = value["preset"]
            if preset not in PRESETS:
                _fail(_at(path, "preset"), f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
            return _preset_range(preset, self.now)
        start = _datetime(value["from"], _at(path, "from")) if value.get("from") is not None else None
        end = _datetime(value["to"], _at(path, "to")) if value.get("to") is not None else None
        if start is None and end is None:
            _fail(path, 'needs "from", "to" or both, or a "preset"')
        bounds = "[]"
        if end is not None and DATE_ONLY_RE.match(value["to"].strip()):
            end, bounds = end + timedelta(days=1), "[)"
        if start is not None and end is not None and start > end:
            _fail(_at(path, "from"), "is after to")
        return start, end, bounds

    def scorecard_rule(self, identifier, positive, negated, value, operator, path, scope, ref):
        """Entities by their level on scorecard `identifier`, in each blueprint in scope that has it; levels compare
        in the scorecard's order (`>= Silver`: Silver or above). An entity the scorecard's filter leaves out has no
        level: positive operators are false for it, their negations true."""
        self.allow(positive, SCORECARD_OPERATORS, operator, f"scorecard {identifier!r}", path)
        value_path, parts = _at(path, "value"), []
        for blueprint_identifier in sorted(scope):
            blueprint = self.catalog.get(blueprint_identifier)
            scorecard = next((s for s in blueprint.scorecards or () if s["identifier"] == identifier), None)
            if scorecard is None:
                continue
            titles = [level["title"] for level in scorecard["levels"]]
            if positive == "isNotEmpty":
                levels = titles
            else:
                wanted = _strings(value, value_path) if positive == "in" else [_string(value, value_path)]
                unknown = [w for w in wanted if w not in titles]
                if unknown:
                    _fail(value_path, f"{unknown[0]!r} is not a level of scorecard {identifier!r} "
                                      f"({', '.join(titles)})")
                at = titles.index(wanted[0])
                levels = {"=": wanted, "in": wanted, ">": titles[at + 1:], ">=": titles[at:], "<": titles[:at],
                          "<=": titles[:at + 1]}[positive]
            result = self.alias("sr")
            predicate = _sql(f"EXISTS (SELECT 1 FROM {SCORECARD_RESULT_TABLE} {result} WHERE {result}.entity_id = "
                             f"{ref('id')} AND {result}.scorecard = %s AND {result}.level = ANY(%s::text[]))",
                             identifier, levels)
            parts.append(_and([self.searched_in(ref, [blueprint.pk]), _not(predicate) if negated else predicate]))
        if not parts:
            _fail(_at(path, "property"), f"no blueprint in scope has a scorecard {identifier!r}")
        return _or(parts)

    def team_leaf(self, positive, value, path, ref):
        memberships = self.alias("et")
        if positive == "isNotEmpty":
            return _sql(f"EXISTS (SELECT 1 FROM {ENTITY_TEAMS_TABLE} {memberships} "
                        f"WHERE {memberships}.entity_id = {ref('id')})")
        team = self.alias("tm")
        return _sql(f"EXISTS (SELECT 1 FROM {ENTITY_TEAMS_TABLE} {memberships} JOIN {TEAM_TABLE} {team} "
                    f"ON {team}.id = {memberships}.team_id WHERE {memberships}.entity_id = {ref('id')} "
                    f"AND {team}.name = ANY(%s::text[]))", _strings(value, path))

    def relation_leaf(self, key, target_blueprint, positive, value, operator, path, ref):
        """Entities by their `key` relation's targets, entities of `target_blueprint` (the write path and the
        blueprint writers keep every edge of a relation on its target blueprint): naming it lets the target be
        found through the (blueprint, identifier) index, without reading another blueprint's definition here."""
        self.allow(positive, RELATION_OPERATORS, operator, f"relation {key!r}", path)
        edge = self.alias("r")
        if positive == "isNotEmpty":
            return _sql(f"EXISTS (SELECT 1 FROM {RELATION_TABLE} {edge} WHERE {edge}.source_id = {ref('id')} "
                        f"AND {edge}.relation = %s)", key)
        target, owner = self.alias("t"), self.alias("b")
        return _sql(f"EXISTS (SELECT 1 FROM {RELATION_TABLE} {edge} JOIN {ENTITY_TABLE} {target} "
                    f"ON {target}.id = {edge}.target_id WHERE {edge}.source_id = {ref('id')} AND {edge}.relation = %s "
                    f"AND {target}.blueprint_id = (SELECT {owner}.id FROM {BLUEPRINT_TABLE} {owner} "
                    f"WHERE {owner}.identifier = %s) AND {target}.identifier = ANY(%s::text[]))",
                    key, target_blueprint, _strings(value, _at(path, "value")))

    def mirror_leaf(self, blueprint, key, mirror, positive, value, operator, path, ref):
        """EXISTS a value reached along the mirror's relation chain that satisfies the rule — through, and from,
        entities the reader may read only (catalog.access.EntityReadRule, the rule of `entities_visible_to`): for
        the reader, a mirror through or to an entity they may not read is null, in the WHERE clause as in the JSON."""
        steps = str(mirror.get("path", "")).split(".")
        relations, last = steps[:-1], steps[-1]
        broken = f"mirror property {key!r} of blueprint {blueprint.identifier!r} has a broken path {mirror.get('path')!r}"
        if not relations:
            _fail(_at(path, "property"), broken)
        current, joins, join_params, previous = blueprint, [], [], None
        first, readable = None, []
        for step in relations:
            definition = (current.relations or {}).get(step)
            target = self.catalog.get(definition.get("target")) if isinstance(definition, dict) else None
            if target is None:
                _fail(_at(path, "property"), broken)
            edge = self.alias("m")
            if previous is None:
                first = edge
                joins.append(f"{RELATION_TABLE} {edge}")
            else:
                if not self.reads.everything:  # the entity this hop passes through
                    through = self.alias("mv")
                    joins.append(f"JOIN {ENTITY_TABLE} {through} ON {through}.id = {previous}.target_id")
                    readable.append(_Sql(*self.reads.sql(through)))
                joins.append(f"JOIN {RELATION_TABLE} {edge} ON {edge}.source_id = {previous}.target_id AND {edge}.relation = %s")
                join_params.append(step)
            previous, current = edge, target
        reached = self.alias("mt")
        joins.append(f"JOIN {ENTITY_TABLE} {reached} ON {reached}.id = {previous}.target_id")
        readable.append(_Sql(*self.reads.sql(reached)))
        inner_ref = _Ref(reached)
        if last.startswith("$"):
            if positive == "containsAny" and last != "$team":
                positive = "in"
            inner = self.meta(last, positive, value, operator, path, inner_ref)
        else:
            definition = current.schema.get("properties", {}).get(last)
            if definition is None:
                _fail(_at(path, "property"), broken)
            if positive == "containsAny" and definition.get("type") != "array":
                positive = "in"
            inner = self.schema_leaf(last, definition, positive, value, operator, path, inner_ref)
        condition = _and([*readable, inner])
        return _Sql(f"EXISTS (SELECT 1 FROM {' '.join(joins)} WHERE {first}.source_id = {ref('id')} "
                    f"AND {first}.relation = %s AND ({condition.text}))",
                    tuple(join_params) + (relations[0],) + condition.params)

    # relatedTo

    def related_to(self, node, path):
        blueprint = self.catalog.get(node.get("blueprint"))
        if blueprint is None:
            _fail(_at(path, "blueprint"), f"blueprint {node.get('blueprint')!r} does not exist")
        if "value" not in node:
            _fail(_at(path, "value"), "is required: the identifier (or identifiers) of the related entity")
        identifiers = _strings(self.context(node["value"], _at(path, "value")), _at(path, "value"))
        direction = node.get("direction", "upstream")
        if direction not in ("upstream", "downstream"):
            _fail(_at(path, "direction"), f'must be "upstream" or "downstream", got {direction!r}')
        required = node.get("required")
        if required is not None and not isinstance(required, bool):
            _fail(_at(path, "required"), "must be true or false")
        if not identifiers:
            return FALSE
        here, there = ("source_id", "target_id") if direction == "upstream" else ("target_id", "source_id")
        walk, sources = self.alias("w"), self.alias("s")
        first, step = self.alias("r"), self.alias("r")
        edge_filter = []
        if required is not None:
            edge_filter = self.required_edges(required)
            if not edge_filter:
                return FALSE

        def only_required(edge):
            if required is None:
                return "", "", ()
            owner = self.alias("o")
            return (f" JOIN {ENTITY_TABLE} {owner} ON {owner}.id = {edge}.source_id",
                    f" AND ({owner}.blueprint_id::text || ':' || {edge}.relation) = ANY(%s::text[])", (edge_filter,))

        first_join, first_where, first_params = only_required(first)
        step_join, step_where, step_params = only_required(step)
        hop = self.alias("h")
        self.walked = True
        # Each step looks edges up through the index for every walked node (LATERAL ... OFFSET 0 keeps
        # the planner from hash-joining the whole relation table on its guess of the walk's size), and
        # the walk is evaluated once, as an array the outer query probes through the primary key.
        text = (f"{_Ref()('id')} = ANY(ARRAY(WITH RECURSIVE {walk}(id) AS ("
                f"SELECT {first}.{there} FROM {RELATION_TABLE} {first} JOIN {ENTITY_TABLE} {sources} "
                f"ON {sources}.id = {first}.{here}{first_join} "
                f"WHERE {sources}.blueprint_id = %s AND {sources}.identifier = ANY(%s::text[]){first_where} "
                f"UNION SELECT {hop}.id FROM {walk} JOIN LATERAL (SELECT {step}.{there} AS id "
                f"FROM {RELATION_TABLE} {step}{step_join} WHERE {step}.{here} = {walk}.id{step_where} OFFSET 0) {hop} ON TRUE"
                f") SELECT id FROM {walk}))")
        return _Sql(text, (blueprint.pk, identifiers) + first_params + step_params)

    def required_edges(self, required):
        """['<blueprint id>:<relation>', ...] of the relations whose `required` flag equals `required`."""
        return sorted(f"{bp.pk}:{key}" for identifier in self.catalog.identifiers()
                      for bp in [self.catalog.get(identifier)]
                      for key, definition in (bp.relations or {}).items()
                      if bool(definition.get("required", False)) is required)


def _check_size(rule_set, path):
    """Bound nesting and rule count before compiling (iteratively: a hostile body cannot recurse here)."""
    count, stack = 0, [(rule_set, 1, path)]
    while stack:
        node, depth, at = stack.pop()
        if not (isinstance(node, dict) and isinstance(node.get("rules"), list)):
            continue
        if depth > MAX_DEPTH:
            _fail(at or "body", f"rule sets nest deeper than {MAX_DEPTH} levels")
        for i, child in enumerate(node["rules"]):
            count += 1
            if count > MAX_RULES:
                _fail(_at(path, "rules") if path else "rules", f"at most {MAX_RULES} rules in all")
            stack.append((child, depth + 1, f"{_at(at, 'rules')}[{i}]"))


@dataclass
class CompiledSearch:
    queryset: object  # QuerySet[Entity], permission-filtered
    blueprints: list  # identifiers of the blueprints in the top-level scope (`matchingBlueprints`)


def search_compile(rule_set, *, user, blueprint=None, base=None, path="") -> CompiledSearch:
    """Compile `rule_set` into one permission-filtered Entity queryset (see the module docstring).
    `blueprint` (a Blueprint or its identifier) restricts the search to it; `base` is a queryset to narrow instead of
    all entities; `path` prefixes the JSON paths named in errors (e.g. "query")."""
    if isinstance(blueprint, str):
        identifier, blueprint = blueprint, Blueprint.objects.filter(identifier=blueprint).first()
        if blueprint is None:
            raise ValidationFailed(f"blueprint {identifier!r} does not exist", path="blueprint")
    given = [blueprint] if blueprint is not None else []
    catalog = _Catalog(given)
    scope = {blueprint.identifier} if blueprint is not None else catalog.identifiers()
    _check_size(rule_set, path)
    compiler = _Compiler(catalog=catalog, user=user, now=timezone.now(),
                         searched_blueprint=blueprint.pk if blueprint is not None else None)
    condition, scope = compiler.rule_set(rule_set, path, scope)
    queryset = Entity.objects.all() if base is None else base
    if blueprint is not None:
        queryset = queryset.filter(blueprint_id=blueprint.pk)
    if condition != TRUE:
        queryset = queryset.filter(EntityCondition(condition.text, condition.params))
    if user is not None:
        queryset = entities_visible_to(user, queryset, blueprint_id=blueprint.pk if blueprint is not None else None)
    return CompiledSearch(queryset=queryset, blueprints=sorted(scope))


def search_queryset(rule_set, *, user, blueprint=None, base=None, path=""):
    """Entities matching `rule_set` that `user` may read (user=None: the system, unfiltered), as one
    queryset evaluated in one SQL query. Raises ValidationFailed naming the JSON path at fault."""
    return search_compile(rule_set, user=user, blueprint=blueprint, base=base, path=path).queryset


@dataclass(frozen=True)
class ConditionSql:
    """A rule set compiled for a hand-written statement (`search_condition_sql`)."""

    text: str
    params: tuple
    reusable: bool  # for the same rule set over the same definition of the blueprint, by any caller
    depends_on: tuple = ()  # ((pk, version), ...) of the other blueprints whose definitions it read
    # It walks relations (`relatedTo`): PostgreSQL cannot estimate a recursive walk, so it keeps planning a statement
    # holding one afresh at every execution (its generic plan looks dearer than its custom ones), although the plan
    # is the same whatever the parameters: index probes step by step, the result probed by primary key.
    walks: bool = False


def search_condition_sql(rule_set, *, user, blueprint, alias, path=""):
    """`rule_set` over entities of `blueprint` (a Blueprint) as SQL for a hand-written statement whose searched row is
    `alias`. It may be reused when it read neither the clock nor the caller (read rule, email, teams) nor the list
    of every blueprint, as long as the other blueprints it read (`depends_on`: a `relatedTo` source, a mirror
    chain's) are still those definitions. No permission filter: the statement adds the read rule itself."""
    _check_size(rule_set, path)
    catalog = _Catalog([blueprint])
    compiler = _Compiler(catalog=catalog, user=user, now=timezone.now(), searched_blueprint=blueprint.pk)
    condition, _ = compiler.rule_set(rule_set, path, {blueprint.identifier})
    text = TOKEN_RE.sub(lambda match: f'{alias}."{match.group(1)}"', condition.text)
    reusable = not (compiler.read_clock or compiler.read_caller or catalog.listed)
    return ConditionSql(text, condition.params, reusable, tuple(sorted(catalog.read.values())), compiler.walked)


def rules_condition(rule_set, *, blueprint, path=""):
    """`rule_set` over entities of `blueprint` (a Blueprint) as a boolean expression to annotate an Entity queryset
    with, as the system sees it (no permission filter, no caller context): several rule sets evaluated in one query
    (scorecard rules). None when it matches every entity. Raises ValidationFailed as `search_queryset` does."""
    return rules_conditions([rule_set], blueprint=blueprint, path=path)[0][0]


def rules_conditions(rule_sets, *, blueprint, path=""):
    """`rules_condition` of each rule set (None for those matching everything), and whether the result may be
    reused for the same rule sets over the same definition of `blueprint`: true when the compilation read neither
    the clock (date presets, timers) nor any other blueprint's definition."""
    catalog, conditions, reusable = _Catalog([blueprint]), [], True
    for rule_set in rule_sets:
        _check_size(rule_set, path)
        compiler = _Compiler(catalog=catalog, user=None, now=timezone.now())
        condition, _ = compiler.rule_set(rule_set, path, {blueprint.identifier})
        conditions.append(None if condition == TRUE else EntityCondition(condition.text, condition.params))
        reusable = reusable and not compiler.read_clock
    return conditions, reusable and catalog.loaded is None


def rules_validate(rule_set, *, blueprints, path="") -> None:
    """Check a rule set as `search_queryset` would, without running a search: for rule sets stored
    with a definition (action conditions and datasets, scorecards). `blueprints` is the scope —
    Blueprint objects (possibly unsaved) or identifiers; empty means every blueprint. Context values
    are not resolved (there is no caller at save time)."""
    given = [bp for bp in blueprints if isinstance(bp, Blueprint)]
    catalog = _Catalog(given)
    scope = {bp.identifier if isinstance(bp, Blueprint) else bp for bp in blueprints}
    for identifier in scope:
        if catalog.get(identifier) is None:
            raise ValidationFailed(f"blueprint {identifier!r} does not exist", path=path or "blueprint")
    _check_size(rule_set, path)
    compiler = _Compiler(catalog=catalog, user=None, now=timezone.now(), resolve_context=False)
    compiler.rule_set(rule_set, path, scope or catalog.identifiers())
