"""Developer-facing pages of the catalog: blueprint tables, entity pages."""
