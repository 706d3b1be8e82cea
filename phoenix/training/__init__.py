"""The one training loop (step, loader, validation, early stopping, checkpoints, metrics, plot) and the
ranker's training job."""
