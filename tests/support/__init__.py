"""Helpers shared by the test suites: real servers, waiting with deadlines."""
