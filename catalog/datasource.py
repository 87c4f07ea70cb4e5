"""An entity's datasource: who wrote it. An Ocean integration names itself in its User-Agent,
`port-ocean/<type>/<version>/<installationId>/<exporter|...>`, and that text is the datasource of what it
writes (Port's `$datasource`); every other writer leaves it empty."""
import re

OCEAN_USER_AGENT = re.compile(r"port-ocean/[^/\s]+/[^/\s]+/[^/\s]+/[A-Za-z_-]+")
DATASOURCE_MAX = 300


def request_datasource(request):
    """The datasource of what this request writes: an Ocean integration's User-Agent, else ''."""
    agent = (request.headers.get("User-Agent") or "").strip()
    return agent if len(agent) <= DATASOURCE_MAX and OCEAN_USER_AGENT.fullmatch(agent) else ""
