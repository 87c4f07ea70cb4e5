"""The outbox and the change log in the admin, read-only; the Kafka settings with a connection test. API credentials are listed by catalog/api_client_admin.py (their
deactivation is audited, and portal sits below the audit app)."""
import json

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from portal.kafka import KafkaUnavailable, kafka_topics, settings_shown
from portal.models import ChangeLogMessage, OrganizationSettings, OutboxMessage
from portal.organization import organization_settings
from portal.read_only_admin import ReadOnlyAdmin

KAFKA_TEST_TIMEOUT_SECONDS = 5.0


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    """Runtime rows: read-only, for the platform team to see what is pending, retried or failed."""

    list_display = ("id", "task", "args", "not_before", "attempts", "published_at", "lease_until", "done_at",
                    "failed_at", "last_error")
    list_filter = (("done_at", admin.EmptyFieldListFilter), ("failed_at", admin.EmptyFieldListFilter), "task")
    ordering = ("-id",)
    show_full_result_count = False


@admin.register(OrganizationSettings)
class KafkaAdmin(ReadOnlyAdmin):
    """The Kafka settings (from the environment) and the organization's settings, read-only, with a "Test
    connection" button that lists the cluster's topics within KAFKA_TEST_TIMEOUT_SECONDS and says ok or why not."""

    def get_urls(self):
        return [path("test-connection/", self.admin_site.admin_view(self.connection_test_view), name="portal_kafka_test"),
                *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "title": "Kafka and organization settings",
                   "opts": self.model._meta, "kafka_settings": settings_shown(),
                   "changelog_pending": ChangeLogMessage.objects.filter(published_at__isnull=True).count(),
                   "organization_settings": json.dumps(organization_settings(), indent=2, sort_keys=True)}
        return TemplateResponse(request, "admin/portal/kafka.html", context)

    def connection_test_view(self, request):
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied
        try:
            topics = kafka_topics(timeout=KAFKA_TEST_TIMEOUT_SECONDS)
        except KafkaUnavailable as exc:
            self.message_user(request, f"Kafka is not reachable: {exc}", messages.ERROR)
        else:
            shown = ", ".join(topics[:20]) + (f" and {len(topics) - 20} more" if len(topics) > 20 else "")
            self.message_user(request, f"Connected to {settings.KAFKA_BROKERS}: {len(topics)} topic"
                                       f"{'' if len(topics) == 1 else 's'}{': ' + shown if topics else ''}.",
                              messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:portal_organizationsettings_changelist"))


@admin.register(ChangeLogMessage)
class ChangeLogMessageAdmin(ReadOnlyAdmin):
    """Runtime rows, read-only: what the change log published and what still waits for Kafka."""

    list_display = ("id", "key", "created_at", "published_at", "published_to")
    list_filter = (("published_at", admin.EmptyFieldListFilter),)
    ordering = ("-id",)
    show_full_result_count = False
