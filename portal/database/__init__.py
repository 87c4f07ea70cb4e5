"""The portal's database backend (settings DATABASES ENGINE "portal.database"): Django's PostgreSQL backend with a
health check that asks the server only when the connection gives a reason to (base.py)."""
