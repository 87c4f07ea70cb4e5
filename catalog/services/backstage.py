"""Backstage descriptors into the catalog: install the Backstage blueprints, register / change / refresh /
delete a location, and the one-off import (manage.py backstage_import).

A refresh reads first (files, URLs, GitHub: no transaction held while waiting on the network), then writes
in one transaction: every descriptor upserted as its location's datasource, and the entities of that
datasource no descriptor defines any more deleted (entities_delete with owned_only, as an Ocean resync's
delete, so nothing another writer owns is touched). A descriptor that does not validate is reported and
its entity, if an earlier refresh wrote it, kept as it was."""
import json
import time
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import choices as audit_choices
from audit.services import audit_record
from catalog.backstage.descriptors import BLUEPRINTS
from catalog.backstage.reader import DescriptorError, DescriptorReader, under_file_roots
from catalog.choices import BackstageLocationType
from catalog.identifiers import check_key
from catalog.models import BackstageLocation, Blueprint, Entity
from catalog.selectors.backstage import backstage_location_document
from catalog.services.catalog_import import catalog_import
from catalog.services.entities import UPSERT, entities_delete, entities_write
from portal.errors import Conflict, NotFound, PortalError, ValidationFailed
from portal.outbound import OutboundRefused
from portal.retry import retry_on_conflict

BACKSTAGE_BLUEPRINTS = Path(__file__).resolve().parents[1] / "fixtures" / "backstage-blueprints.json"
WRITE_CHUNK = 100  # entities per entities_write call, as catalog_import writes them
INTERVAL_MAX_MINUTES = 7 * 24 * 60
ERRORS_KEPT = 1000  # of a refresh, with the location; beyond, their number
LOCATION_FIELDS = {"identifier", "type", "target", "catalogPath", "refreshIntervalMinutes"}


def backstage_blueprints_install(*, actor):
    """Create the Backstage blueprints that do not exist yet (a blueprint people changed stays theirs).
    Returns the identifiers created."""
    document = json.loads(BACKSTAGE_BLUEPRINTS.read_text())
    existing = set(Blueprint.objects.filter(identifier__in=BLUEPRINTS.values()).values_list("identifier", flat=True))
    missing = [b for b in document["blueprints"] if b["identifier"] not in existing]
    if missing:
        catalog_import(actor=actor, document={"blueprints": missing})
    return [b["identifier"] for b in missing]


def _configuration(location):
    """What the audit records of a location: its configuration, not its refreshes."""
    return {k: v for k, v in backstage_location_document(location).items() if k in LOCATION_FIELDS}


def _clean(data, *, creating):
    if not isinstance(data, dict):
        raise ValidationFailed("must be a JSON object", path="body")
    unknown = sorted(set(data) - LOCATION_FIELDS)
    if unknown:
        raise ValidationFailed(f"is not a location field ({', '.join(sorted(LOCATION_FIELDS))})", path=unknown[0])
    if creating:
        check_key(data.get("identifier"), "identifier")
    elif "identifier" in data:
        raise ValidationFailed("a location's identifier cannot change", path="identifier")
    if "type" in data or creating:
        if data.get("type") not in BackstageLocationType.values:
            raise ValidationFailed(f"must be one of {', '.join(BackstageLocationType.values)}", path="type")
    if "target" in data or creating:
        target = data.get("target")
        if not isinstance(target, str) or not target.strip() or len(target) > 1000 or not target.isprintable():
            raise ValidationFailed("is required: a path, a URL or a GitHub organization (at most 1000 characters)",
                                   path="target")
    if "catalogPath" in data:
        path = data["catalogPath"]
        if not isinstance(path, str) or not path.strip() or len(path) > 300 or ".." in path.split("/") or not path.isprintable():
            raise ValidationFailed("must be a path inside a repository, e.g. catalog-info.yaml", path="catalogPath")
    if "refreshIntervalMinutes" in data:
        minutes = data["refreshIntervalMinutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= INTERVAL_MAX_MINUTES:
            raise ValidationFailed(f"must be a whole number of minutes from 1 to {INTERVAL_MAX_MINUTES}",
                                   path="refreshIntervalMinutes")
    return data


def _target_check(location):
    """Refuse a target the reader would refuse, at registration rather than at every refresh."""
    if location.type == BackstageLocationType.URL and not any(
            location.target.startswith(prefix) for prefix in settings.BACKSTAGE_URL_ALLOWED_PREFIXES):
        raise ValidationFailed("is not under a prefix in BACKSTAGE_URL_ALLOWED_PREFIXES", path="target")
    if location.type == BackstageLocationType.FILE and not Path(location.target).is_absolute():
        raise ValidationFailed("must be an absolute path", path="target")
    if location.type == BackstageLocationType.FILE and not under_file_roots(location.target, settings.BACKSTAGE_FILE_ROOTS):
        raise ValidationFailed("is not under a directory in BACKSTAGE_FILE_ROOTS (the portal reads files there only)",
                               path="target")
    if location.type == BackstageLocationType.GITHUB and not all((ch.isascii() and ch.isalnum()) or ch in "-_"
                                                                 for ch in location.target):
        raise ValidationFailed("must be a GitHub organization's login", path="target")


def _apply(location, data):
    for key, attribute in (("type", "type"), ("target", "target"), ("catalogPath", "catalog_path"),
                           ("refreshIntervalMinutes", "refresh_interval_minutes")):
        if key in data:
            setattr(location, attribute, data[key])
    _target_check(location)


def _locked(location):
    locked = BackstageLocation.objects.select_for_update().filter(pk=location.pk).first()
    if locked is None:  # deleted meanwhile
        raise NotFound(f"Backstage location {location.identifier!r} was not found.")
    return locked


@transaction.atomic
def backstage_location_register(*, actor, data):
    """Register a location; beat refreshes it within a minute (it was never refreshed), or refresh it now."""
    data = _clean(data, creating=True)
    if BackstageLocation.objects.filter(identifier=data["identifier"]).exists():
        raise Conflict(f"Backstage location {data['identifier']!r} already exists.")
    location = BackstageLocation(identifier=data["identifier"], created_by=actor.label, updated_by=actor.label)
    _apply(location, data)
    try:
        with transaction.atomic():
            location.save()
    except IntegrityError:  # registered meanwhile by another request
        raise Conflict(f"Backstage location {data['identifier']!r} already exists.") from None
    audit_record(actor=actor, verb=audit_choices.BACKSTAGE_LOCATION_CREATED, action=audit_choices.AuditAction.CREATE,
                 resource_type="backstage_location", identifier=location.identifier, after=_configuration(location))
    return location


@transaction.atomic
def backstage_location_update(*, actor, location, data):
    location = _locked(location)
    data = _clean(data, creating=False)
    before = _configuration(location)
    _apply(location, data)
    after = _configuration(location)
    if after != before:
        location.updated_by = actor.label
        location.save()
        audit_record(actor=actor, verb=audit_choices.BACKSTAGE_LOCATION_UPDATED, action=audit_choices.AuditAction.UPDATE,
                     resource_type="backstage_location", identifier=location.identifier, before=before, after=after)
    return location


def _entities_of(datasource):
    by_blueprint = {}
    for blueprint, identifier in Entity.objects.filter(datasource=datasource).values_list("blueprint__identifier",
                                                                                           "identifier"):
        by_blueprint.setdefault(blueprint, set()).add(identifier)
    return by_blueprint


@retry_on_conflict
@transaction.atomic
def backstage_location_delete(*, actor, location):
    """Delete a location and the entities it wrote (and still owns)."""
    location = _locked(location)
    writer = replace(actor, datasource=location.datasource)
    for blueprint, identifiers in _entities_of(location.datasource).items():
        entities_delete(actor=writer, blueprint=Blueprint.objects.get(identifier=blueprint),
                        identifiers=sorted(identifiers), owned_only=True)
    before = _configuration(location)
    location.delete()
    audit_record(actor=actor, verb=audit_choices.BACKSTAGE_LOCATION_DELETED, action=audit_choices.AuditAction.DELETE,
                 resource_type="backstage_location", identifier=before["identifier"], before=before)


def _read(location):
    reader = DescriptorReader(file_roots=settings.BACKSTAGE_FILE_ROOTS, github_token=settings.GITHUB_TOKEN)
    if location.type == BackstageLocationType.GITHUB:
        try:
            targets = reader.github_organization(location.target, location.catalog_path)
        except (PortalError, OSError, ValueError, OutboundRefused) as exc:
            result = reader.result
            result.errors.append(DescriptorError(file=location.target, document=None, field="target",
                                                 message=f"organization cannot be listed: {exc}"))
            return result, False
        result = reader.read(targets)
    else:
        result = reader.read([location.target])
    return result, result.roots_unread == 0


def _descriptors_write(actor, result):
    """Upsert what `result` read; returns the keys written and the writer's refusals as DescriptorErrors."""
    if not result.descriptors:
        return set(), []
    missing = set(BLUEPRINTS.values()) - set(Blueprint.objects.filter(identifier__in=BLUEPRINTS.values())
                                             .values_list("identifier", flat=True))
    if missing:
        raise ValidationFailed(f"the Backstage blueprints are not installed ({', '.join(sorted(missing))}); "
                               "install them first (manage.py backstage_import does, as does the admin's "
                               "action on locations, or refresh with ?install_blueprints=true)", path="blueprints")
    written, errors = set(), []
    by_blueprint = {}
    for descriptor in result.descriptors:
        by_blueprint.setdefault(descriptor.blueprint, []).append(descriptor)
    for identifier in sorted(by_blueprint):
        blueprint, descriptors = Blueprint.objects.get(identifier=identifier), by_blueprint[identifier]
        for start in range(0, len(descriptors), WRITE_CHUNK):
            chunk = descriptors[start:start + WRITE_CHUNK]
            writes = entities_write(actor=actor, blueprint=blueprint, items=[d.entity for d in chunk], mode=UPSERT,
                                    create_missing_related=True)
            for descriptor, write in zip(chunk, writes):
                if write.error is None:
                    written.add(descriptor.key)
                else:
                    file, index = result.origins[descriptor.key]
                    errors += [DescriptorError(file=file, document=index, field=e.path, message=e.message)
                               for e in write.error.errors]
    return written, errors


@retry_on_conflict
@transaction.atomic
def _location_write(*, actor, location, result, complete, started):
    location = _locked(location)
    writer = replace(actor, datasource=location.datasource)
    written, refused = _descriptors_write(writer, result)
    errors = result.errors + refused
    # Keep what a descriptor still names, though it failed now; remove only what no descriptor defines any more,
    # and nothing when the location could not be read at all (an outage is not a removal).
    defined = set(result.origins) | result.invalid
    removed = 0
    if complete:
        for blueprint, identifiers in _entities_of(location.datasource).items():
            gone = sorted(i for i in identifiers if (blueprint, i) not in defined)
            if gone:
                deleted, _ = entities_delete(actor=writer, blueprint=Blueprint.objects.get(identifier=blueprint),
                                             identifiers=gone, owned_only=True)
                removed += len(deleted)
    before = {"entityCount": location.entity_count, "errors": len(location.errors)}
    location.last_refresh_at = timezone.now()
    location.last_refresh_seconds = round(time.monotonic() - started, 3)
    location.files_read = result.files
    location.entity_count = Entity.objects.filter(datasource=location.datasource).count()
    location.errors = [e.as_json() for e in errors[:ERRORS_KEPT]]
    if len(errors) > ERRORS_KEPT:
        location.errors.append({"file": "", "document": None, "field": "",
                                "message": f"and {len(errors) - ERRORS_KEPT} more errors, not kept"})
    location.save()
    audit_record(actor=actor, verb=audit_choices.BACKSTAGE_LOCATION_REFRESHED, action=audit_choices.AuditAction.UPDATE,
                 resource_type="backstage_location", identifier=location.identifier, before=before,
                 after={"entityCount": location.entity_count, "errors": len(errors), "written": len(written),
                        "removed": removed, "filesRead": result.files})
    return location


def backstage_location_refresh(*, actor, location):
    """Read the location and bring the catalog in line with it; returns the location as refreshed."""
    started = time.monotonic()
    result, complete = _read(location)
    return _location_write(actor=actor, location=location, result=result, complete=complete, started=started)


def backstage_import(*, actor, targets):
    """The one-off import: read `targets` (paths or URLs, any file the operator names) and upsert what they
    define. Nothing is removed: no location owns what it writes. Returns (entity keys written, errors)."""
    result = DescriptorReader(github_token=settings.GITHUB_TOKEN).read(targets)
    written, refused = _import_write(actor=actor, result=result)
    return written, result.errors + refused


@retry_on_conflict
@transaction.atomic
def _import_write(*, actor, result):
    return _descriptors_write(actor, result)
