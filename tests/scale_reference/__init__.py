"""A frozen copy of the data path as it was before the scale work (commit c14ef34): clean, dedup, split, summary.

The tests in test_scale_data.py check that the fast path gives exactly the same pairs, counts, split and
summary as this code. Do not edit these files (except to follow a deliberate change of the rules)."""
from .sources import Dataset, load_dataset
from .split import Split, split_by_name
from .summary import summarise
