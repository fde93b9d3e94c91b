"""Encoders, backbones, preprocessors and tasks of mmzoo."""
