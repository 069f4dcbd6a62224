"""Builders, golden helpers, hypothesis strategies and fakes shared by the tests."""
