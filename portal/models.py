"""API credentials: a client id and a hashed secret per user, exchanged for short-lived JWTs."""
from django.conf import settings
from django.db import models


class ApiClient(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_clients")
    client_id = models.CharField(max_length=64, unique=True)
    secret_hash = models.CharField(max_length=256)  # Django password hasher format
    is_machine = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The one active token per credential: handed out again while valid.
    token = models.TextField(blank=True, default="")
    token_expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.client_id} ({self.user})"
