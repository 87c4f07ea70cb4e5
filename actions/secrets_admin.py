"""Secrets in the admin: name and description shown, the value write-only (never rendered back, not even
masked). Saves and deletes go through actions.secrets (encrypted, audited with origin ADMIN)."""
from django import forms
from django.contrib import admin

from actions.models import Secret
from actions.secrets import NAME_RE, secret_delete, secret_set
from portal.actor import Actor, AuditOrigin


def _actor(request):
    return Actor(user=request.user, origin=AuditOrigin.ADMIN)


class SecretAdminForm(forms.ModelForm):
    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False), required=False, strip=False,
        help_text="Write-only: it is stored encrypted and never shown again. Leave empty to keep the current value.")

    class Meta:
        model = Secret
        fields = ("name", "description")

    def clean_name(self):
        name = self.cleaned_data["name"]
        if not NAME_RE.fullmatch(name):
            raise forms.ValidationError("Use letters, digits and underscores, starting with a letter or underscore, "
                                        "so templates can refer to it as .secrets.NAME.")
        return name

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and not cleaned.get("value"):
            self.add_error("value", "A new secret needs a value.")
        return cleaned


@admin.register(Secret)
class SecretAdmin(admin.ModelAdmin):
    form = SecretAdminForm
    list_display = ("name", "description", "updated_at")
    search_fields = ("name",)
    ordering = ("name",)
    fields = ("name", "description", "value")

    def get_readonly_fields(self, request, obj=None):
        return ("name",) if obj is not None else ()  # renaming would break the templates that use it

    def save_model(self, request, obj, form, change):
        saved = secret_set(actor=_actor(request), name=obj.name, value=form.cleaned_data.get("value") or None,
                           description=obj.description)
        obj.pk, obj.value_encrypted, obj.created_at, obj.updated_at = saved.pk, saved.value_encrypted, saved.created_at, saved.updated_at
        obj._state.adding = False

    def delete_model(self, request, obj):
        secret_delete(actor=_actor(request), secret=obj)

    def delete_queryset(self, request, queryset):
        for secret in queryset:
            secret_delete(actor=_actor(request), secret=secret)
