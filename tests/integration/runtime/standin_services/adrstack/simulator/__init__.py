"""Stand-in for tests: shadows the real service when this folder is first on PYTHONPATH."""
