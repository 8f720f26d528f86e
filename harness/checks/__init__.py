"""Checks stage: compare device outputs with references."""
