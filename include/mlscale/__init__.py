"""mlscale: the data side of machine learning, run by Airflow."""

__version__ = "0.1.0"
