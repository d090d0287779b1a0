"""Floor 5 (data): the IDX format, Fashion-MNIST, datasets, mini-batches and preprocessing.

Imports numpy only at import time; ``DataLoader`` imports ``Tensor`` when it makes batches.
"""
from .fashion_mnist import (CLASSES, ChecksumError, DatasetNotFoundError, FashionMNIST,
                            FashionMNISTError, load_fashion_mnist)
from .dataset import (Dataset, Subset, TensorDataset, TransformDataset, default_collate,
                      random_split)
from .idx import IDXError, read_idx, write_idx
from .loader import (DataLoader, fit_normalization, normalize, standardize_per_image, to_float,
                     train_val_split)

__all__ = ["read_idx", "write_idx", "IDXError",
           "load_fashion_mnist", "FashionMNIST", "CLASSES", "FashionMNISTError", "ChecksumError",
           "DatasetNotFoundError",
           "Dataset", "TensorDataset", "Subset", "TransformDataset", "random_split",
           "default_collate", "DataLoader", "train_val_split", "to_float", "fit_normalization",
           "normalize", "standardize_per_image"]
