"""``python -m ridgeline`` runs the CLI."""

from .cli import entry

entry()
