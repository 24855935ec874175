"""Datasets: the on-disk HDF5 schema, splits, normalisation and importers."""

from neuroreduce.datasets.dataset import SPLIT_NAMES, Dataset

__all__ = ["SPLIT_NAMES", "Dataset"]
