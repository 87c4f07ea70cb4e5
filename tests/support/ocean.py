"""Who the Ocean test integration (tests/ocean/portal_fake) is to the portal."""

INTEGRATION_ID = "portal-fake-test"

# What the integration's writes carry as User-Agent, hence as datasource.
DATASOURCE = f"port-ocean/portal-fake/0.1.0/{INTEGRATION_ID}/exporter"
