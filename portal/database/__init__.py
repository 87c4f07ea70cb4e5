"""The portal's database backend (settings DATABASES ENGINE "portal.database"): Django's PostgreSQL backend with a
health check that asks the server only when the connection gives a reason to, and the query log of the statements
portal/prepared_statements.py prepares (base.py)."""
