"""Shared plumbing of the developer-facing pages: the navigation context and the page-size parsing every
list page uses (web/action_pages, web/catalog_pages)."""
from django.core.exceptions import BadRequest

NAVIGATION = (
    ("home", "Home", "/"),
    ("catalog", "Catalog", "/catalog/"),
    ("scorecards", "Scorecards", "/scorecards/"),
    ("initiatives", "Initiatives", "/initiatives/"),
    ("teams", "Teams", "/teams/"),
    ("actions", "Actions", "/actions/"),
    ("runs", "My runs", "/runs/"),
    ("environments", "My environments", "/environments/"),
    ("locks", "Locks", "/locks/"),
    ("deployments", "Deployments", "/deployments/"),
    ("approvals", "Approvals", "/approvals/"),
)


def navigation(request):
    """Template context: the top navigation, with the section of the current path marked."""
    path = request.path
    current = next((key for key, _title, href in NAVIGATION if href != "/" and path.startswith(href)),
                   "home" if path == "/" else "")
    return {"navigation": NAVIGATION, "navigation_current": current}


def page_size(request, *, default=50, maximum=200):
    raw = request.GET.get("limit")
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("limit: must be a whole number")
    return max(1, min(value, maximum))
