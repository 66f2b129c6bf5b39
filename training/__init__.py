"""Training: dataset assembly from topics, LoRA fine-tuning, metrics, adapter registry."""
