"""Scorers: turn per-action probabilities into one ranking score."""
