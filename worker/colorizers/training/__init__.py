"""Training the nets we train here: a recipe per architecture, the loops, checkpoints and model cards."""
