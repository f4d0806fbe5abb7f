"""Helpers shared by the test files (pyproject: pytest pythonpath = ["tests"], so `from helpers.x import ...`)."""
