from django.apps import AppConfig


class WebConfig(AppConfig):
    """The top layer: every server-rendered page, template and static file. It calls the domain apps' selectors
    and services; no domain app imports it."""
    name = "web"
