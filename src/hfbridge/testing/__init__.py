"""Test helpers for hfbridge users: the vcr configuration and a pytest plugin."""
