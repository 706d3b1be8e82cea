"""`phoenix benchmark-logs`: Phoenix, SASRec and count baselines on the next-item protocol of a real log."""
