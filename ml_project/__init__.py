"""ml_project: from historic data to a served, monitored, safely promoted model."""

__version__ = "0.1.0"
