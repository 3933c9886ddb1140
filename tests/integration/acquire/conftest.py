"""The acquire tests' servers are session fixtures of tests/conftest.py (code in tests/servers.py)."""
