"""Entity values as HTML for the catalog pages: enum values as coloured badges that also say their value,
booleans as Yes/No, URLs as links (http and https only), date-times readable in UTC, timers with the time
left, arrays item by item, objects as compact JSON. Everything goes through `format_html`, so values
are escaped; a colour name is used as a CSS class only when it is one of Port's colour names."""
import json
from datetime import timezone as dt_timezone

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from portal.datetimes import instant_of

# Port's enum colour names (portal.css has a .badge.<name> rule for each).
COLORS = frozenset({
    "blue", "paleBlue", "turquoise", "green", "lime", "olive", "orange", "yellow", "gold", "bronze", "brown",
    "red", "pink", "purple", "darkGray", "silver", "lightGray",
})
EMPTY = mark_safe('<span class="muted">—</span>')
SHORT_TEXT = 120  # characters of a long string shown in a table cell (the entity page shows all of it)
SHORT_ITEMS = 8  # array items shown in a table cell


def readable_datetime(moment):
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def time_left_text(moment, now=None):
    """The words portal.js keeps current on <time data-countdown> ("2d 3h left", "expired")."""
    seconds = int((moment - (now or timezone.now())).total_seconds())
    if seconds <= 0:
        return "expired"
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        return f"{days}d {hours}h left"
    if hours:
        return f"{hours}h {minutes}m left"
    return f"{minutes}m {seconds % 60}s left"


def datetime_html(moment):
    iso = moment.astimezone(dt_timezone.utc).isoformat()
    return format_html('<time datetime="{}">{}</time>', iso, readable_datetime(moment))


def badge_html(text, color=None):
    color = color if color in COLORS else "lightGray"
    return format_html('<span class="badge {}">{}</span>', color, text)


def _text(value, full):
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if not full and len(text) > SHORT_TEXT:
        return format_html('<span title="{}">{}…</span>', text, text[:SHORT_TEXT])
    return format_html("{}", text)


def _enum_color(definition, value):
    colors = definition.get("enumColors") or (definition.get("colors") if definition.get("colorized") else None) or {}
    return colors.get(str(value).lower() if isinstance(value, bool) else str(value))


def value_html(value, definition=None, *, full=False):
    """HTML for one property value; `definition` is the property's schema (or what is known of it: a mirror's
    target property, a calculation's `type`/`format`/`colors`). `full`: the entity page shows long values whole."""
    definition = definition or {}
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, list):
        return _array_html(value, definition, full)
    if isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False, indent=2 if full else None, sort_keys=True)
        if full:
            return format_html('<pre class="value">{}</pre>', text)
        return format_html("<code>{}</code>", text if len(text) <= SHORT_TEXT else text[:SHORT_TEXT] + "…")
    if "enum" in definition or definition.get("colorized"):
        return badge_html(value if not isinstance(value, bool) else ("Yes" if value else "No"),
                          _enum_color(definition, value))
    if isinstance(value, bool):
        return badge_html("Yes", "green") if value else badge_html("No", "lightGray")
    if isinstance(value, (int, float)):
        return format_html('<span class="num">{}</span>', value)
    fmt = definition.get("format")
    if fmt in ("date-time", "timer") or (not fmt and instant_of(value) is not None):
        moment = instant_of(value)
        if moment is None:
            return _text(value, full)
        if fmt == "timer":
            return format_html('{} <time data-countdown datetime="{}" class="muted">{}</time>', datetime_html(moment),
                               moment.astimezone(dt_timezone.utc).isoformat(), time_left_text(moment))
        return datetime_html(moment)
    if fmt in ("url", None, "labeled-url") and value.startswith(("https://", "http://")) and " " not in value:
        label = value if full or len(value) <= 60 else value[:57] + "…"
        return format_html('<a href="{}" rel="noopener noreferrer">{}</a>', value, label)
    if fmt in ("email", "user") and "@" in value and " " not in value:
        return format_html('<a href="mailto:{}">{}</a>', value, value)
    if fmt in ("markdown", "yaml", "proto") and full:
        return format_html('<pre class="value">{}</pre>', value)
    return _text(value, full)


def _array_html(values, definition, full):
    items = definition.get("items") if isinstance(definition.get("items"), dict) else {}
    shown = values if full else values[:SHORT_ITEMS]
    parts = format_html_join(" ", "{}", ((value_html(v, items, full=full),) for v in shown))
    if len(values) > len(shown):
        return format_html('{} <span class="muted">+{} more</span>', parts, len(values) - len(shown))
    return format_html('<span class="items">{}</span>', parts)
