"""Benchmark-specific facts for ResNet50 (model registry, ImageNet recipes, model files)."""
