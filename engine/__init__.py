"""What a training run needs around the model: training state and resume, torchrun set-up, progress, the
visualizer and loss plots, divergence checks, seeding, and the in-training evaluator."""
