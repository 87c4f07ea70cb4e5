"""The organization's settings (`PATCH /v1/organization` records them; actions.services.agent writes them)."""
from portal.models import OrganizationSettings


def organization_settings() -> dict:
    row = OrganizationSettings.objects.order_by("pk").first()
    return dict(row.settings) if row is not None else {}


def agent_streams_kafka() -> bool:
    """Port's execution agent announced its Kafka streamer: agent runs are published to the runs topic."""
    return str(organization_settings().get("portAgentStreamerName", "")).upper() == "KAFKA"


def organization_changelog_destination():
    """The organization-wide change log destination ({"type": "KAFKA"}, or None)."""
    destination = organization_settings().get("changelogDestination")
    return destination if isinstance(destination, dict) else None
