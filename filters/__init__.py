"""Filters: each removes candidates for one stated reason, recorded in the response."""
