"""The OpenAPI document of every app: drf-spectacular's postprocessing hook (SPECTACULAR_SETTINGS) gathers
the operations of each app's `api/openapi.py` and portal's own, and completes the document with them
(portal/api/openapi.py says how)."""
from actions.api import openapi as actions_openapi
from audit.api import openapi as audit_openapi
from catalog.api import openapi as catalog_openapi
from portal.api import openapi as portal_openapi


def complete_operations(result, generator, request, public):
    """drf-spectacular postprocessing hook."""
    specs = {**catalog_openapi.OPERATIONS, **actions_openapi.OPERATIONS, **audit_openapi.OPERATIONS,
             **portal_openapi.OPERATIONS}
    return portal_openapi.operations_complete(result, specs)
