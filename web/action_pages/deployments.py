"""Deployments (/deployments/): where each service runs (version, commit, when, who, CI job, lock, health), the
recent deployments, and the four DORA figures with a per-day chart — for a selection by service, team and
environment over a period (?from=&to=, 30 days by default). /deployments/services/<service>/ and
/deployments/environments/<environment>/ are the same page with the service or environment fixed.

Every figure comes from catalog/selectors/deployments.py (permission-filtered, aggregated in SQL); this module
only turns them into readable text and a small server-rendered SVG chart."""
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from web.action_pages.environments import duration_text, safe_url
from web.action_pages.locks import lock_view
from catalog.selectors.deployments import (DEFAULT_PERIOD, dora_metrics, deployments_visible_to, period_parse,
                                           running_services_visible_to)
from catalog.selectors.locks import environments_visible_to
from catalog.selectors.teams import team_names
from portal.datetimes import instant_of
from portal.errors import PortalError
from web.pages import page_size

FILTERS = ("service", "team", "environment", "from", "to")
PERIOD_CHOICES = (7, 30, 90)
HEALTH_COLOURS = {"healthy": "green", "degraded": "orange", "down": "red", "unknown": "lightGray"}
STATUS_COLOURS = {"success": "green", "failure": "red"}

# The chart's geometry (SVG user units; the SVG scales to its box).
CHART_WIDTH, CHART_HEIGHT = 720, 220
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 40, 10, 12, 36


# --- readable figures -----------------------------------------------------------------------------------------

def _number(value, digits=1):
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def dora_figures(dora):
    """The four DORA figures as headline + detail text."""
    frequency, lead = dora["deploymentFrequency"], dora["leadTimeForChanges"]
    failure, restore = dora["changeFailureRate"], dora["timeToRestore"]
    if not frequency["deployments"]:
        frequency_text = "none"
    elif frequency["perDay"] >= 1:
        frequency_text = f"{_number(frequency['perDay'])} per day"
    else:
        frequency_text = f"{_number(frequency['perWeek'])} per week"
    return [
        {"key": "frequency", "title": "Deployment frequency", "value": frequency_text,
         "detail": f"{frequency['deployments']} successful deployment{'s' if frequency['deployments'] != 1 else ''}"},
        {"key": "lead", "title": "Lead time for changes",
         "value": f"{duration_text(lead['medianSeconds'])} median" if lead["samples"] else "—",
         "detail": (f"p90 {duration_text(lead['p90Seconds'])}, from commit to deployment, over "
                    f"{lead['samples']} deployment{'s' if lead['samples'] != 1 else ''}") if lead["samples"]
                   else "no deployment carried a commit time"},
        {"key": "failure", "title": "Change failure rate",
         "value": f"{_number(failure['rate'] * 100)}%" if failure["rate"] is not None else "—",
         "detail": f"{failure['failed']} of {failure['total']} deployment{'s' if failure['total'] != 1 else ''} failed"},
        {"key": "restore", "title": "Time to restore",
         "value": f"{duration_text(restore['medianSeconds'])} median" if restore["samples"] else "—",
         "detail": f"{restore['samples']} failure{'s' if restore['samples'] != 1 else ''} restored"
                   + (f", {restore['unresolved']} not yet" if restore["unresolved"] else "")},
    ]


def _tick(maximum):
    """A round step for about four gridlines up to `maximum`."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if maximum / step <= 4:
            return step
    return max(1, maximum // 4)


def deployments_chart(series):
    """Stacked bars (success below, failure above) per day, as SVG geometry for the template."""
    plot_width = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    count = max(1, len(series))
    top = max([day["success"] + day["failure"] for day in series] + [1])
    step = _tick(top)
    top = -(-top // step) * step  # up to the next gridline
    slot = plot_width / count
    bar = max(1.0, slot * 0.75)
    base = PLOT_TOP + plot_height

    def height(value):
        return value / top * plot_height

    bars = []
    for i, day in enumerate(series):
        x = PLOT_LEFT + i * slot + (slot - bar) / 2
        success_h, failure_h = height(day["success"]), height(day["failure"])
        bars.append({"date": day["date"], "success": day["success"], "failure": day["failure"], "x": round(x, 2),
                     "width": round(bar, 2), "success_y": round(base - success_h, 2), "success_h": round(success_h, 2),
                     "failure_y": round(base - success_h - failure_h, 2), "failure_h": round(failure_h, 2)})
    gridlines = [{"value": v, "y": round(base - height(v), 2)} for v in range(0, top + 1, step)]
    label_every = max(1, -(-count // 6))
    labels = [{"text": day["date"][5:], "x": round(PLOT_LEFT + i * slot + slot / 2, 2)}
              for i, day in enumerate(series) if i % label_every == 0]
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "left": PLOT_LEFT, "right": CHART_WIDTH - PLOT_RIGHT,
            "base": base, "label_y": base + 16, "bars": bars, "gridlines": gridlines, "labels": labels,
            "total_success": sum(d["success"] for d in series), "total_failure": sum(d["failure"] for d in series)}


# --- rows -----------------------------------------------------------------------------------------------------

def _running_groups(running):
    """Running services grouped per service (the table spans the service name over its environments)."""
    groups = {}
    for item in running:
        group = groups.setdefault(item["service"]["identifier"], {"service": item["service"], "items": []})
        group["items"].append({
            **item, "lock": lock_view(item["lock"]), "environment_lock": lock_view(item["environment"]["lock"]),
            "deployed_time": instant_of(item.get("deployedAt")), "job_url": safe_url(item.get("jobUrl")),
            "health_colour": HEALTH_COLOURS.get(item.get("health"), "lightGray"),
        })
    return list(groups.values())


def _deployment_rows(deployments):
    return [{**d, "finished_time": instant_of(d.get("finishedAt")), "job_url": safe_url(d.get("jobUrl")),
             "status_colour": STATUS_COLOURS.get(d.get("status"), "lightGray")} for d in deployments]


def _field_of(exc):
    """The filter the (first) error is about, or "" for none."""
    field = exc.errors[0].parts[0] if exc.errors and exc.errors[0].parts else ""
    return field if field in FILTERS else ""


# --- view -----------------------------------------------------------------------------------------------------

@login_required
def deployments_page(request, service=None, environment=None):
    user = request.user
    values = {name: (request.GET.get(name) or "").strip() for name in FILTERS}
    if service is not None:
        values["service"] = service
    if environment is not None:
        values["environment"] = environment
    selection = {name: values[name] or None for name in ("service", "team", "environment")}
    error, status = None, 200
    running, deployments, dora = [], [], None
    try:
        since, until = period_parse(values["from"], values["to"], default=DEFAULT_PERIOD)
        running = running_services_visible_to(user, **selection)
        deployments = deployments_visible_to(user, **selection, since=since, until=until,
                                             limit=page_size(request, default=50, maximum=200))
        dora = dora_metrics(user, **selection, since=since, until=until)
    except PortalError as exc:
        error, status = {"field": _field_of(exc), "message": exc.message}, exc.status
    options = running_services_visible_to(user) if any(selection.values()) or error else running
    services = sorted({(o["service"]["identifier"], o["service"]["title"] or o["service"]["identifier"]) for o in options})
    teams = [(name, name) for name in team_names()]
    environments = [(e.identifier, e.title or e.identifier) for e in environments_visible_to(user)]
    for name, choices in (("service", services), ("team", teams), ("environment", environments)):
        if values[name] and values[name] not in {value for value, _ in choices}:
            choices.append((values[name], values[name]))  # kept as typed, so the error names what was asked
    base_query = {k: v for k, v in values.items() if v and k in ("service", "team", "environment")}
    return render(request, "actions/deployments.html", {
        "values": values, "fixed_service": service, "fixed_environment": environment, "error": error,
        "services": services, "teams": teams, "environments": environments,
        "groups": _running_groups(running), "deployments": _deployment_rows(deployments),
        "dora": dora, "figures": dora_figures(dora) if dora else [], "chart": deployments_chart(dora["series"]) if dora else None,
        "period": _period_text(dora) if dora else "", "period_choices": _period_choices(base_query),
    }, status=status)


def _period_text(dora):
    since, until = instant_of(dora["period"]["from"]), instant_of(dora["period"]["to"])
    return f"{since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M} UTC"


def _period_choices(base_query):
    """Links to the last 7, 30 and 90 days with the same selection."""
    today = timezone.now().date()
    return [{"days": days, "href": "/deployments/?" + urlencode({**base_query, "from": (today - timedelta(days=days - 1)).isoformat(),
                                                                  "to": today.isoformat()})}
            for days in PERIOD_CHOICES]
