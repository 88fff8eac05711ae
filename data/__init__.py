"""namestudio data: sources, cleaning, leak-free splits, vocabulary (no torch needed)."""
from .clean import clean_name
from .download import (
    NAMES_SHA256,
    SHA256,
    URL,
    default_source,
    download_pytorch_names,
    pytorch_names_available,
    pytorch_names_dir,
    pytorch_names_state,
    user_data_dir,
)
from .errors import DataError
from .sources import Dataset, load_dataset
from .split import Split, split_by_name
from .summary import summarise
from .vocab import Vocab

__all__ = [
    "DataError", "URL", "SHA256", "user_data_dir", "pytorch_names_dir",
    "pytorch_names_available", "pytorch_names_state", "NAMES_SHA256", "default_source", "download_pytorch_names",
    "Dataset", "load_dataset", "clean_name", "split_by_name", "Split", "Vocab",
    "summarise",
]
