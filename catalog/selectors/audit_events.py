"""Which audit events a user may see. Who may read which blueprint is the catalog's to answer, so the audit
log's permission filter lives here; the audit app records the events and pages through what it is given."""
from django.db.models import Q

from audit.models import AuditEvent
from catalog.access import readable_blueprint_ids, user_team_ids
from catalog.models import Blueprint, Team


def audit_events_visible_to(user, queryset=None):
    """Events the user may see, filtered in the query.

    Admins see everything. Everyone else sees events about blueprints (whose definitions every signed-in
    user may read through GET /v1/blueprints) and events about entities of blueprints whose entities they
    may read — for `ownedByTeam` read grants, only events whose entity belonged to one of their teams
    before or after the change. Team, user and credential events are for admins only.
    """
    queryset = AuditEvent.objects.all() if queryset is None else queryset
    if user is None or not user.is_authenticated:
        return queryset.none()
    full, owned = readable_blueprint_ids(user)
    if full is None:
        return queryset
    condition = Q(resource_type="blueprint")
    if full:
        condition |= Q(blueprint__in=Blueprint.objects.filter(id__in=full).values("identifier"))
    team_ids = user_team_ids(user)
    if owned and team_ids:
        names = list(Team.objects.filter(id__in=team_ids).values_list("name", flat=True))
        owned_by_team = Q()
        for name in names:
            owned_by_team |= Q(diff__after__team__contains=[name]) | Q(diff__before__team__contains=[name])
        condition |= Q(blueprint__in=Blueprint.objects.filter(id__in=owned).values("identifier")) & owned_by_team
    return queryset.filter(condition)


def audit_events_about_visible_to(user, *, resource_type, identifier, blueprint=None, limit):
    """The newest `limit` events about one resource (an entity of `blueprint`, a run, ...) the user may see."""
    events = AuditEvent.objects.filter(resource_type=resource_type, identifier=identifier)
    if blueprint is not None:
        events = events.filter(blueprint=blueprint)
    return list(audit_events_visible_to(user, events).order_by("-id")[:limit])
