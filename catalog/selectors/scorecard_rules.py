"""Which scorecard rules entities pass, computed in one query for all of a blueprint's scorecards."""
from django.db.models import Value

from catalog.models import Entity
from catalog.scorecards import scorecard_rule_set
from catalog.selectors.search import rules_condition


def scorecard_passes(blueprint, entity_ids=None, scorecards=None):
    """{entity id: {scorecard identifier: {rule identifier: passed}}} for the entities (`entity_ids`, or all of the
    blueprint's) each scorecard applies to, over `scorecards` (default: all of the blueprint's): one query, each
    filter and rule an annotated boolean, as the system sees the entities."""
    scorecards = blueprint.scorecards if scorecards is None else scorecards
    if not scorecards:
        return {}
    columns = {}
    for s, scorecard in enumerate(scorecards):
        columns[f"f{s}"] = (scorecard["identifier"], None, scorecard["filter"])
        for r, rule in enumerate(scorecard["rules"]):
            columns[f"r{s}_{r}"] = (scorecard["identifier"], rule["identifier"], rule["query"])
    annotations = {name: rules_condition(scorecard_rule_set(query), blueprint=blueprint) if query else None
                   for name, (_, _, query) in columns.items()}
    queryset = Entity.objects.filter(blueprint=blueprint)
    if entity_ids is not None:
        queryset = queryset.filter(pk__in=list(entity_ids))
    queryset = queryset.annotate(**{name: condition if condition is not None else Value(True)
                                    for name, condition in annotations.items()})
    passes = {}
    for row in queryset.values("pk", *columns):
        standing = passes.setdefault(row["pk"], {})
        for name, (scorecard, rule, _) in columns.items():
            if rule is None:
                if row[name]:
                    standing[scorecard] = {}
            elif scorecard in standing:
                standing[scorecard][rule] = bool(row[name])
    return passes
