from datetime import timezone


def iso_z(value):
    """ISO 8601 UTC with milliseconds and Z, as Port's API writes timestamps."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
