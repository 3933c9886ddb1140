"""AutoFlux: raw data files → Delta Lake ``raw`` tables → dbt → ML-ready training data."""

__version__ = "0.1.0"
