#!/usr/bin/env python
"""django-allauth peer for idflow's side-by-side benchmark (bench/run-peers.sh; not run in CI)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
