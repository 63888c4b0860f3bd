"""Airflow sensors: wait for data in the lake."""
