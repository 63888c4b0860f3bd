"""Airflow operators: thin wrappers that build a hook and call a library function."""
