"""Training the feed-forward colorizers: tasks per architecture, the loop, checkpoints and model cards."""
