import re

from catalog import choices
from portal.errors import ValidationFailed

_KEY = re.compile(choices.KEY_RE)


def _identifier_ok(value, extra_chars, max_length):
    return (
        isinstance(value, str)
        and 0 < len(value) <= max_length
        and value not in {".", ".."}
        and all(ch.isalpha() or ch in extra_chars for ch in value)
    )


def check_blueprint_identifier(value, path="identifier"):
    if not _identifier_ok(value, choices.BLUEPRINT_IDENTIFIER_EXTRA_CHARS, choices.BLUEPRINT_IDENTIFIER_MAX):
        raise ValidationFailed(
            f"{value!r} is not a valid blueprint identifier (letters, digits and @_.+:\\/- only, "
            f"at most {choices.BLUEPRINT_IDENTIFIER_MAX} characters).", path=path
        )


def check_entity_identifier(value, path="identifier"):
    if not _identifier_ok(value, choices.ENTITY_IDENTIFIER_EXTRA_CHARS, choices.ENTITY_IDENTIFIER_MAX):
        raise ValidationFailed(
            f"{value!r} is not a valid entity identifier (letters, digits and @_.+:\\/=- only, "
            f"at most {choices.ENTITY_IDENTIFIER_MAX} characters).", path=path
        )


def check_key(value, path):
    if not (isinstance(value, str) and len(value) <= choices.KEY_MAX and _KEY.fullmatch(value)):
        raise ValidationFailed(f"{value!r} is not a valid key (A-Z a-z 0-9 @ _ = - only, at most {choices.KEY_MAX}).",
                               path=path)
