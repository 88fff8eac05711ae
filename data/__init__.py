"""namestudio data: sources, cleaning, leak-free splits, vocabulary (no torch needed)."""
