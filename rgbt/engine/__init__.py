"""Training loops, inference, checkpoints and run directories."""
