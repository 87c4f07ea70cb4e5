#!/usr/bin/env python
"""Django's command-line utility. Makes sure the embedded services run when none are configured."""
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from portal.embedded.holders import ensure_embedded_services

    # Settings never start servers; the process that needs them does (DESIGN.md).
    if len(sys.argv) > 1 and sys.argv[1] not in {"check", "help", "makemigrations", "--help", "version"}:
        ensure_embedded_services()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
