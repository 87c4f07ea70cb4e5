"""An action input of every kind the run form renders (EVERY_INPUT) and the order the form shows them in (ORDER)."""

TIER_ONE = {"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": "1"}]}

EVERY_INPUT = {
    "name": {"type": "string", "title": "Name", "description": "Lowercase letters and digits.",
             "pattern": "^[a-z][a-z0-9]*$", "minLength": 3, "maxLength": 20, "placeholder": "myenv"},
    "tier": {"type": "string", "title": "Tier", "enum": ["gold", "silver"],
             "enumColors": {"gold": "orange", "silver": "lightGray"}, "default": "silver"},
    "region": {"type": "string", "title": "Region", "enum": ["eu", "us"]},
    "replicas": {"type": "number", "title": "Replicas", "minimum": 1, "maximum": 5, "default": 2},
    "size": {"type": "number", "title": "Size", "enum": [1, 2, 4]},
    "debug": {"type": "boolean", "title": "Debug", "default": True},
    "config": {"type": "object", "title": "Config"},
    "expires": {"type": "string", "format": "date-time", "title": "Expires", "default": "2030-01-02T03:04:00+02:00"},
    "docs": {"type": "string", "format": "url", "title": "Docs"},
    "contact": {"type": "string", "format": "email", "title": "Contact"},
    "notes": {"type": "string", "format": "multi-line", "title": "Notes"},
    "readme": {"type": "string", "format": "markdown", "title": "Readme"},
    "values": {"type": "string", "format": "yaml", "title": "Values"},
    "ip4": {"type": "string", "format": "ipv4", "title": "IPv4"},
    "ip6": {"type": "string", "format": "ipv6", "title": "IPv6"},
    "owner": {"type": "string", "format": "user", "title": "Owner"},
    "team": {"type": "string", "format": "team", "title": "Team"},
    "service": {"type": "string", "format": "entity", "title": "Service", "blueprint": "Service", "dataset": TIER_ONE},
    "services": {"type": "array", "title": "Services", "items": {"type": "string", "format": "entity", "blueprint": "Service"}},
    "flavours": {"type": "array", "title": "Flavours",
                 "items": {"type": "string", "enum": ["a", "b"], "enumColors": {"a": "green", "b": "red"}}},
    "tags": {"type": "array", "title": "Tags", "items": {"type": "string"}},
    "ports": {"type": "array", "title": "Ports", "items": {"type": "number"}},
    "secret_default": {"type": "string", "title": "Hidden", "visible": False, "default": "kept"},
    "fixed": {"type": "string", "title": "Fixed", "disabled": True, "default": "locked-in"},
}

ORDER = ["name", "service", "tier", "region", "replicas", "size", "debug", "config", "expires", "docs", "contact", "notes",
         "readme", "values", "ip4", "ip6", "owner", "team", "services", "flavours", "tags", "ports", "fixed"]
