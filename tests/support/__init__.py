"""Helpers the tests share that are not test data (test data comes from tests/factories.py).

Test modules may import these; they never import another test module or a conftest.
"""
