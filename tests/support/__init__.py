"""Helpers the tests share. Fixtures live in conftest.py; functions and constants live here, so that no test
file imports another test file."""
