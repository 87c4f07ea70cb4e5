"""Backstage locations, for admins (the API, the admin, the location page) and for beat."""
from catalog.models import BackstageLocation
from portal.datetimes import instant_text
from portal.errors import NotFound


def backstage_location_document(location):
    """The location as the API answers it: its configuration, its last refresh and that refresh's errors."""
    return {"identifier": location.identifier, "type": location.type, "target": location.target,
            "catalogPath": location.catalog_path, "refreshIntervalMinutes": location.refresh_interval_minutes,
            "lastRefreshAt": instant_text(location.last_refresh_at), "lastRefreshSeconds": location.last_refresh_seconds,
            "filesRead": location.files_read, "entityCount": location.entity_count, "errors": location.errors,
            "createdAt": instant_text(location.created_at), "createdBy": location.created_by,
            "updatedAt": instant_text(location.updated_at), "updatedBy": location.updated_by}


def backstage_locations_all():
    return BackstageLocation.objects.order_by("identifier")


def backstage_location_get(identifier):
    location = BackstageLocation.objects.filter(identifier=identifier).first() if isinstance(identifier, str) else None
    if location is None:
        raise NotFound(f"Backstage location {identifier!r} was not found.")
    return location


def backstage_location_is_due(location, now):
    """Never refreshed, or its interval has passed since its last refresh."""
    return (location.last_refresh_at is None
            or (now - location.last_refresh_at).total_seconds() >= location.refresh_interval_minutes * 60)


def backstage_locations_due(now):
    """The locations due for a refresh, the longest waiting first."""
    return [location for location in BackstageLocation.objects.order_by("last_refresh_at", "identifier")
            if backstage_location_is_due(location, now)]
