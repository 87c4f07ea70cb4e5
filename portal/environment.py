"""How settings read the environment: django-environ's ``Env``, strict where a typo would otherwise pass.

A value that does not parse as its setting's type stops the start with ``ImproperlyConfigured`` naming the
variable (``DELIVERY_LEASE_SECONDS: 'abc' is not a number``), where ``int()`` alone would not say which variable
and django-environ alone would read ``DEBUG=maybe`` as false and ``1x5`` as the float 15. An empty number or
boolean is its default, as ``.env.example`` leaves them; an empty string or list stays empty. Values are taken
as written: no ``$OTHER_VARIABLE`` expansion, since a secret may well begin with ``$``.
"""

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
TYPE_NAMES = {bool: "a boolean (true/false, yes/no, on/off, 1/0)", int: "an integer", float: "a number"}


class Env(environ.Env):
    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        raw = self.ENVIRON.get(var)
        if raw is None or (not raw.strip() and cast in TYPE_NAMES):
            if default is self.NOTSET:
                raise ImproperlyConfigured(f"Set the {var} environment variable")
            return default
        try:
            return self.parse_value(raw, cast)
        except ValueError:
            raise ImproperlyConfigured(f"{var}: {raw!r} is not {TYPE_NAMES.get(cast, 'valid')}") from None

    @classmethod
    def parse_value(cls, value, cast):
        if cast is bool:
            word = value.strip().lower()
            if word not in TRUE_WORDS + FALSE_WORDS:
                raise ValueError(word)
            return word in TRUE_WORDS
        if cast is float:
            return float(value)
        if cast is list:
            return [item.strip() for item in value.split(",") if item.strip()]
        return super().parse_value(value, cast)
