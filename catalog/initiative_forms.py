"""The admin form of an initiative (catalog/initiatives.py): the fields of its JSON, validated by dry-running the
service that will save it (catalog/forms.py explains the pattern), each error on the field it names."""
from django import forms

from catalog.forms import PrettyJSONField, ServiceForm
from catalog.models import Blueprint, Initiative


class InitiativeAdminForm(ServiceForm, forms.ModelForm):
    blueprint = forms.ModelChoiceField(queryset=Blueprint.objects.exclude(scorecards=[]).order_by("identifier"),
                                       to_field_name="identifier", help_text="A blueprint with scorecards.")
    rules = PrettyJSONField(rows=3, help_text='Rules of the scorecard to pass besides the level\'s: ["hasReadme", ...]; '
                                              'empty for none.')
    filter = PrettyJSONField(rows=6, help_text='Which of the scorecard\'s entities it covers: {"combinator": "and", '
                                               '"conditions": [{"property": "tier", "operator": "=", "value": "prod"}]}; '
                                               'empty for all.')

    field_by_key = {"identifier": "identifier", "title": "title", "description": "description", "blueprint": "blueprint",
                    "scorecard": "scorecard", "level": "level", "rules": "rules", "filter": "filter",
                    "dueDate": "due_date"}

    class Meta:
        model = Initiative
        fields = ["identifier", "title", "description", "blueprint", "scorecard", "level", "rules", "filter", "due_date"]
        help_texts = {"scorecard": "The identifier of one of the blueprint's scorecards.",
                      "level": "Every covered entity reaches this level (its rules and those below); empty when "
                               "only the named rules count.",
                      "due_date": "The date the goal is due."}

    def initiative_data(self):
        """The initiative JSON this form describes (what the services take)."""
        data = self.cleaned_data
        blueprint = data.get("blueprint")
        due = data.get("due_date")
        return {"identifier": self.instance.identifier if self.instance.pk else data.get("identifier"),
                "title": data.get("title"), "description": data.get("description") or "",
                "blueprint": blueprint.identifier if blueprint else "", "scorecard": data.get("scorecard") or "",
                "level": data.get("level") or None, "rules": data.get("rules") or [], "filter": data.get("filter"),
                "dueDate": due.isoformat() if due else ""}

    def save_through_services(self):
        from catalog.services.initiatives import initiative_create, initiative_update

        if self.instance.pk:
            return initiative_update(actor=self.actor, initiative=self.instance, data=self.initiative_data())
        return initiative_create(actor=self.actor, data=self.initiative_data())

    def clean(self):
        cleaned = super().clean()
        self._validate_with(self.save_through_services, conflict_field=None if self.instance.pk else "identifier")
        return cleaned
