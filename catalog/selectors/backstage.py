"""Backstage locations, for admins (the API, the admin, the location page) and for beat."""
from catalog.models import BackstageLocation
from portal.errors import NotFound


def backstage_locations_all():
    return BackstageLocation.objects.order_by("identifier")


def backstage_location_get(identifier):
    location = BackstageLocation.objects.filter(identifier=identifier).first() if isinstance(identifier, str) else None
    if location is None:
        raise NotFound(f"Backstage location {identifier!r} was not found.")
    return location


def backstage_locations_due(now):
    """Locations never refreshed, or whose interval has passed since their last refresh, oldest first."""
    return [location for location in BackstageLocation.objects.order_by("last_refresh_at", "identifier")
            if location.last_refresh_at is None
            or (now - location.last_refresh_at).total_seconds() >= location.refresh_interval_minutes * 60]
