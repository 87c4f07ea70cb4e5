"""The filter controls of a blueprint table and the rule set they make.

The rules are the API's search grammar (catalog/selectors/search.py, what `POST /v1/blueprints/{bp}/entities/search`
takes), built from simple controls: a select for enums and booleans, date presets for date-times and timers,
"contains" for text, "=" for numbers, relations and teams, plus a free-text search of title and identifier.
The page shows the rule set it ran, so the same query can be repeated against the API.
"""
import re
from dataclasses import dataclass, field

from web.catalog_pages.columns import RELATION, SCHEMA

PREFIX = "f."  # GET parameters of property filters: f.<property key>
TEXT_SEARCH = "q"
DATE_PRESETS = (
    ("today", "Today"), ("yesterday", "Yesterday"), ("tomorrow", "Tomorrow"), ("lastWeek", "Last 7 days"),
    ("lastMonth", "Last month"), ("last3Months", "Last 3 months"), ("last12Months", "Last 12 months"),
)


@dataclass
class FilterControl:
    key: str  # the property, relation or meta-property the rule is about
    label: str
    widget: str  # "select", "text" or "number"
    operator: str
    options: list = field(default_factory=list)  # (value, label) for selects
    value: str = ""
    error: str = ""

    @property
    def name(self):
        return TEXT_SEARCH if self.key == TEXT_SEARCH else PREFIX + self.key

    @property
    def input_id(self):
        return "filter-" + re.sub(r"[^A-Za-z0-9_-]", "_", self.name)

    def rule(self):
        if self.value == "":
            return None
        if self.key == TEXT_SEARCH:
            return {"combinator": "or", "rules": [
                {"property": "$title", "operator": "contains", "value": self.value},
                {"property": "$identifier", "operator": "contains", "value": self.value},
            ]}
        if self.operator == "between":
            return {"property": self.key, "operator": "between", "value": {"preset": self.value}}
        return {"property": self.key, "operator": self.operator, "value": self.value}


def _control(column):
    definition = column.definition
    if column.kind == RELATION:
        return FilterControl(column.key, f"{column.title} (identifier)", "text", "=")
    if column.kind != SCHEMA:
        return None
    ptype, fmt = definition.get("type"), definition.get("format")
    if "enum" in definition and ptype in ("string", "number"):
        return FilterControl(column.key, column.title, "select", "=", [(str(v), str(v)) for v in definition["enum"] if v is not None])
    if ptype == "boolean":
        return FilterControl(column.key, column.title, "select", "=", [("true", "Yes"), ("false", "No")])
    if ptype == "string" and fmt in ("date-time", "timer"):
        return FilterControl(column.key, column.title, "select", "between", list(DATE_PRESETS))
    if ptype == "string":
        return FilterControl(column.key, f"{column.title} contains", "text", "contains")
    if ptype == "number":
        return FilterControl(column.key, column.title, "number", "=")
    return None  # arrays and objects: use the API's rules


def filter_controls(columns, params):
    """The controls for a blueprint's columns, holding the values of the request's GET parameters."""
    controls = [FilterControl(TEXT_SEARCH, "Search title or identifier", "text", "contains")]
    controls += [c for c in (_control(column) for column in columns) if c is not None]
    controls.append(FilterControl("$team", "Team", "text", "="))
    for control in controls:
        control.value = params.get(control.name, "").strip()
    return controls


def filter_rule_set(controls):
    """(rule set, [control of each top-level rule]) — the index says whose field an error belongs to."""
    rules, owners = [], []
    for control in controls:
        rule = control.rule()
        if rule is not None:
            rules.append(rule)
            owners.append(control)
    return {"combinator": "and", "rules": rules}, owners


def attach_errors(exc, owners):
    """Put each error of a refused search (`rules[2].value`: "must be a number ...") on the control that made
    rule 2, as its message alone; returns the text of the errors no control made, for the top of the page."""
    left = []
    for error in exc.errors:
        parts = error.parts
        if len(parts) > 1 and parts[0] == "rules" and isinstance(parts[1], int) and parts[1] < len(owners):
            control = owners[parts[1]]
            control.error = f"{control.error}; {error.message}" if control.error else error.message
        else:
            left.append(str(error))
    return "; ".join(left)
