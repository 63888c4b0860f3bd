"""Airflow hooks: connections in, library objects out."""
