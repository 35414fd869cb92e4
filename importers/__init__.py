"""Importers that turn real public datasets into the platform's events."""
