"""movierec: a movie recommendation service for a streaming site, and a simulator of the site."""

__version__ = "0.1.0"
