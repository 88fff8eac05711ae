"""namestudio engine: models, training loop, metrics, sampling, checkpoints."""
