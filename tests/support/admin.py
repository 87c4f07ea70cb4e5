"""Driving the Django admin in tests: admin URLs (`url`), a blueprint's add/change form data (`blueprint_form`) and
the errors a re-rendered form shows (`form_errors`)."""
import json

from django.urls import reverse


SERVICE = {"identifier": "Service", "title": "Service",
           "schema": {"properties": {"replicas": {"type": "number", "minimum": 1}, "language": {"type": "string"}},
                      "required": []},
           "relations": {"dependsOn": {"target": "Service", "many": True, "required": False}}}


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def blueprint_form(**overrides):
    data = {"identifier": "Service", "title": "Service", "icon": "", "description": "",
            "schema": SERVICE["schema"], "relations": {}, "mirror_properties": {}, "calculation_properties": {},
            "aggregation_properties": {}, "formula_properties": {}, "ownership": None, "changelog_destination": None}
    data.update(overrides)
    return {key: (value if isinstance(value, str) else ("" if value is None else json.dumps(value)))
            for key, value in data.items()}


def form_errors(response):
    assert response.status_code == 200, response.status_code  # re-rendered form, not a redirect or a 500
    return response.context["adminform"].form.errors
