"""Shared helpers that know no model and no driver: registry, errors, checkpoint I/O, pages."""
