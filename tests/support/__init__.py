"""Reusable test infrastructure: real local servers (PostgreSQL, https, SMTP) for the suite."""
