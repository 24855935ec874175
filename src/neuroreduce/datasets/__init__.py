"""Datasets: the on-disk HDF5 schema, splits, normalisation and importers."""

from neuroreduce.datasets.dataset import SPLIT_NAMES, Dataset
from neuroreduce.datasets.importers import import_csv_folder, import_dat_folder, import_npz
from neuroreduce.datasets.io import load_dataset, save_dataset
from neuroreduce.datasets.splits import make_splits, split_counts, with_splits
from neuroreduce.datasets.streaming import StreamingDataset

__all__ = [
    "SPLIT_NAMES",
    "Dataset",
    "StreamingDataset",
    "import_csv_folder",
    "import_dat_folder",
    "import_npz",
    "load_dataset",
    "make_splits",
    "save_dataset",
    "split_counts",
    "with_splits",
]
