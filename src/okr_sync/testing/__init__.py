"""Builders of realistic data for tests and demos (no I/O, no test-framework imports)."""
