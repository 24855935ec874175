"""Declared experiments: datasets, grids of models, runner, analyses and reports."""
