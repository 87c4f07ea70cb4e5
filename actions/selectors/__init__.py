"""Permission-filtered reads of the actions app, one module per thing read (runs, ...)."""
