"""Scoring: assertions, reference metrics, statistics (docs/scoring.md)."""
