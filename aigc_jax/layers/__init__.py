"""Reusable linen layers with logical axis names on every weight."""
