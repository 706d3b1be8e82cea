"""Metrics (AUC, log-loss, RCE, calibration), the popularity baseline and the ranker's evaluation."""
