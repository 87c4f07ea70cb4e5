"""Scorecard create/update/delete (on the blueprint row, Port's `/v1/blueprints/{bp}/scorecards`), and evaluation:
an entity's standing is rewritten in the transaction that changes the entity or the scorecard, so what the API
and pages show is never behind the catalog.

Lock order (catalog/services/row_locks.py): the blueprint row FOR UPDATE (waiting for entity writers, who hold it
FOR SHARE, as a blueprint change does), then the results, then the audit."""
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from audit import choices as audit_choices
from audit.services import audit_record
from catalog.initiatives import initiatives_still_hold
from catalog.models import Blueprint, Entity, ScorecardResult, ScorecardSnapshot
from catalog.scorecards import scorecard_definition_clean, scorecard_level
from catalog.selectors.entities import entities_json
from catalog.selectors.scorecard_rules import scorecard_passes
from catalog.selectors.scorecards import scorecard_find, scorecard_json, scorecard_standing
from portal import events
from portal.errors import Conflict, ValidationFailed
from portal.retry import retry_on_conflict

STORED_KEYS = ("identifier", "title", "icon", "blueprint", "team", "properties", "relations")
WRITE_BATCH = 2000  # standings rows per upsert, and changed entities per announcement
# Entities evaluated together when a whole blueprint is: what a chunk holds at once (rules passed, standings before
# and after, the changed entities' documents announced) is what the web worker's memory grows by. 10,000 took the
# bench's worker to 281 MB and left it at 184 MB after 12,000 Deployments; 2,000 to 145 MB, 1,000 to 129 MB, for
# about the same time.
REEVALUATE_CHUNK = 1_000


def _results_write(rows):
    if rows:
        ScorecardResult.objects.bulk_create(rows, batch_size=WRITE_BATCH, update_conflicts=True,
                                            unique_fields=["entity", "scorecard"],
                                            update_fields=["level", "passed", "evaluated_at"])


def scorecards_evaluate(blueprint, entity_ids=None):
    """Rewrite the standings of `entity_ids` (default: all of the blueprint's entities) on the blueprint's scorecards:
    a query for which rules pass, one for the stored standings, an upsert of those that changed and a delete of those
    a filter now leaves out. Returns {entity id: (standings before, standings after)} for the evaluated entities,
    each `{scorecard: {level, rules}}` as entity JSON shows it."""
    scorecards = blueprint.scorecards
    if not scorecards:
        return {}
    passes = scorecard_passes(blueprint, entity_ids)
    # Given entities' rows are found by entity alone, their blueprint checked here: with `blueprint_id = ` in the SQL, a
    # planner without fresh statistics ANDs in the blueprint's index (every row of it) — 100 ms per entity write
    # at 100,000 scored entities.
    stored = (ScorecardResult.objects.filter(blueprint=blueprint) if entity_ids is None
              else ScorecardResult.objects.filter(entity_id__in=list(entity_ids)))
    before, row_ids = {}, {}
    for pk, blueprint_id, entity_id, identifier, level, passed in stored.values_list(
            "pk", "blueprint_id", "entity_id", "scorecard", "level", "passed"):
        if blueprint_id == blueprint.pk:
            before[(entity_id, identifier)], row_ids[(entity_id, identifier)] = (level, passed), pk
    now, rows, standings = timezone.now(), [], {}
    by_identifier = {s["identifier"]: s for s in scorecards}
    for entity_id in {*passes, *(e for e, _ in before)}:
        was, now_is = {}, {}
        for identifier, scorecard in by_identifier.items():
            old = before.get((entity_id, identifier))
            if old is not None:
                was[identifier] = scorecard_standing(scorecard, *old)
            passed = passes.get(entity_id, {}).get(identifier)
            if passed is None:
                continue
            level = scorecard_level(scorecard, {rule for rule, ok in passed.items() if ok})
            now_is[identifier] = scorecard_standing(scorecard, level, passed)
            if old != (level, passed):
                rows.append(ScorecardResult(blueprint=blueprint, entity_id=entity_id, scorecard=identifier,
                                            level=level, passed=passed, evaluated_at=now))
        standings[entity_id] = (was, now_is)
        if len(rows) >= WRITE_BATCH:  # written as they come: a whole blueprint's rows at once held gigabytes
            _results_write(rows)
            rows = []
    _results_write(rows)
    left_out = [row_ids[key] for key in before if key[1] not in passes.get(key[0], {})]
    if left_out:
        ScorecardResult.objects.filter(pk__in=left_out).delete()
    return standings


def scorecard_standings_announce(actor, blueprint, standings):
    """A scorecard change that moves entities' standings is an UPDATE of each of them for the event hook (automations
    listening on ENTITY_UPDATED see `diff.before.scorecards` and `diff.after.scorecards`), announced WRITE_BATCH at a
    time: a whole blueprint's documents at once held gigabytes."""
    changed = {entity_id: pair for entity_id, pair in standings.items() if pair[0] != pair[1]}
    ids = list(changed)
    for batch_start in range(0, len(ids), WRITE_BATCH):
        payload = []
        batch = list(Entity.objects.filter(pk__in=ids[batch_start:batch_start + WRITE_BATCH]))
        for entity in batch:
            # Not select_related: that decodes the blueprint's JSON columns (schema, scorecards...) once per row,
            # which was most of a 100,000-entity re-evaluation; the standings are `changed`'s, not re-read.
            entity.blueprint = blueprint
        for entity, document in zip(batch, entities_json(batch, user=None, calculated=False, standings=False)):
            stored = {key: document[key] for key in STORED_KEYS}
            was, now_is = changed[entity.pk]
            payload.append({"action": "UPDATE", "blueprint": blueprint.identifier, "identifier": entity.identifier,
                            "before": {**stored, "scorecards": was}, "after": {**stored, "scorecards": now_is},
                            "by": actor.label, "origin": actor.origin, "runId": None,
                            "changelogDestination": blueprint.changelog_destination})
        if payload:
            events.announce(events.ENTITY_CHANGED, payload)


def scorecards_reevaluate(*, actor, blueprint):
    """Every entity of `blueprint` evaluated again (its scorecards or definition changed), level changes announced;
    REEVALUATE_CHUNK entities at a time, so what is held (rules passed, standings before and after, announced
    documents) does not grow with the blueprint: all at once, 100,000 entities took a worker to 1.8 GB."""
    if not blueprint.scorecards:
        return
    ids = list(Entity.objects.filter(blueprint=blueprint).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), REEVALUATE_CHUNK):
        scorecard_standings_announce(actor, blueprint, scorecards_evaluate(blueprint, ids[start:start + REEVALUATE_CHUNK]))


def _locked(blueprint):
    return Blueprint.objects.select_for_update().get(pk=blueprint.pk)


def _save(actor, blueprint, scorecards, *, verb, action, identifier, before, after):
    blueprint.scorecards = scorecards
    blueprint.updated_by = actor.label
    blueprint.save(update_fields=["scorecards", "updated_by", "updated_at"])
    audit_record(actor=actor, verb=verb, action=action, resource_type="scorecard", identifier=identifier,
                 blueprint=blueprint.identifier, before=before, after=after)


@retry_on_conflict
@transaction.atomic
def scorecard_create(*, actor, blueprint, data):
    blueprint = _locked(blueprint)
    clean = scorecard_definition_clean(data, blueprint=blueprint)
    if any(s["identifier"] == clean["identifier"] for s in blueprint.scorecards):
        raise Conflict(f"Scorecard {clean['identifier']!r} of blueprint {blueprint.identifier!r} already exists.")
    _save(actor, blueprint, [*blueprint.scorecards, clean], verb=audit_choices.SCORECARD_CREATED,
          action=audit_choices.AuditAction.CREATE, identifier=clean["identifier"], before=None,
          after=scorecard_json(blueprint, clean))
    scorecards_reevaluate(actor=actor, blueprint=blueprint)
    return clean


@retry_on_conflict
@transaction.atomic
def scorecard_update(*, actor, blueprint, identifier, data):
    """PUT: `data` replaces the scorecard; its identifier stays `identifier`."""
    blueprint = _locked(blueprint)
    old = scorecard_find(blueprint, identifier)
    if isinstance(data, dict) and data.get("identifier", identifier) != identifier:
        raise ValidationFailed(f"must be {identifier!r}, the scorecard's identifier in the path", path="identifier")
    clean = scorecard_definition_clean({**data, "identifier": identifier} if isinstance(data, dict) else data,
                                       blueprint=blueprint)
    scorecards = [clean if s["identifier"] == identifier else s for s in blueprint.scorecards]
    initiatives_still_hold(blueprint, scorecards)
    _save(actor, blueprint, scorecards,
          verb=audit_choices.SCORECARD_UPDATED, action=audit_choices.AuditAction.UPDATE, identifier=identifier,
          before=scorecard_json(blueprint, old), after=scorecard_json(blueprint, clean))
    scorecards_reevaluate(actor=actor, blueprint=blueprint)
    return clean


@retry_on_conflict
@transaction.atomic
def scorecard_delete(*, actor, blueprint, identifier):
    blueprint = _locked(blueprint)
    old = scorecard_find(blueprint, identifier)
    scorecards = [s for s in blueprint.scorecards if s["identifier"] != identifier]
    initiatives_still_hold(blueprint, scorecards)
    _save(actor, blueprint, scorecards,
          verb=audit_choices.SCORECARD_DELETED, action=audit_choices.AuditAction.DELETE, identifier=identifier,
          before=scorecard_json(blueprint, old), after=None)
    ScorecardResult.objects.filter(blueprint=blueprint, scorecard=identifier).delete()


@retry_on_conflict
@transaction.atomic
def scorecards_replace(*, actor, blueprint, data):
    """PUT /v1/blueprints/{bp}/scorecards: the list becomes the blueprint's scorecards; each created, changed or
    dropped one is audited as such."""
    blueprint = _locked(blueprint)
    if not isinstance(data, list):
        raise ValidationFailed("must be a list of scorecards", path="body")
    clean, seen = [], set()
    for i, item in enumerate(data):
        try:
            scorecard = scorecard_definition_clean(item, blueprint=blueprint)
        except ValidationFailed as exc:
            raise exc.within(f"[{i}]") from None
        if scorecard["identifier"] in seen:
            raise ValidationFailed(f"{scorecard['identifier']!r} appears twice", path=f"[{i}].identifier")
        seen.add(scorecard["identifier"])
        clean.append(scorecard)
    initiatives_still_hold(blueprint, clean)
    old = {s["identifier"]: s for s in blueprint.scorecards}
    new = {s["identifier"]: s for s in clean}
    blueprint.scorecards = clean
    blueprint.updated_by = actor.label
    blueprint.save(update_fields=["scorecards", "updated_by", "updated_at"])
    for identifier in sorted(set(old) | set(new)):
        if old.get(identifier) == new.get(identifier):
            continue
        verb, action = ((audit_choices.SCORECARD_CREATED, audit_choices.AuditAction.CREATE) if identifier not in old
                        else (audit_choices.SCORECARD_DELETED, audit_choices.AuditAction.DELETE) if identifier not in new
                        else (audit_choices.SCORECARD_UPDATED, audit_choices.AuditAction.UPDATE))
        audit_record(actor=actor, verb=verb, action=action, resource_type="scorecard", identifier=identifier,
                     blueprint=blueprint.identifier,
                     before=scorecard_json(blueprint, old[identifier]) if identifier in old else None,
                     after=scorecard_json(blueprint, new[identifier]) if identifier in new else None)
    ScorecardResult.objects.filter(blueprint=blueprint).exclude(scorecard__in=list(new)).delete()
    scorecards_reevaluate(actor=actor, blueprint=blueprint)
    return clean


def scorecard_snapshots_take(*, day=None):
    """Today's (or `day`'s) level counts of every scorecard, overall and per owning team, written over any taken
    earlier that day: two grouped queries per blueprint with scorecards and one upsert. Returns the rows written."""
    day = day or timezone.localdate()
    now, rows = timezone.now(), []
    for blueprint in Blueprint.objects.exclude(scorecards=[]):
        results = ScorecardResult.objects.filter(blueprint=blueprint)
        counts = {}
        for scorecard, level, n in results.values_list("scorecard", "level").annotate(n=Count("id")):
            counts.setdefault((scorecard, ""), {})[level] = n
        for scorecard, team, level, n in (results.filter(entity__teams__isnull=False)
                                          .values_list("scorecard", "entity__teams__name", "level").annotate(n=Count("id"))):
            counts.setdefault((scorecard, team), {})[level] = n
        for scorecard in blueprint.scorecards:  # a scorecard no entity stands on still has its day
            counts.setdefault((scorecard["identifier"], ""), {})
        rows += [ScorecardSnapshot(day=day, blueprint=blueprint, scorecard=scorecard, team=team, counts=levels,
                                   taken_at=now) for (scorecard, team), levels in counts.items()]
    ScorecardSnapshot.objects.bulk_create(rows, batch_size=2000, update_conflicts=True,
                                          unique_fields=["blueprint", "scorecard", "team", "day"],
                                          update_fields=["counts", "taken_at"])
    return len(rows)
