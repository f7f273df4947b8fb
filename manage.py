#!/usr/bin/env python
"""Django's command-line utility for the demo project."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A bad environment variable deserves one clear line, not a traceback.
        if "--traceback" in sys.argv:
            raise
        sys.exit(f"Configuration error: {exc}")


if __name__ == "__main__":
    main()
