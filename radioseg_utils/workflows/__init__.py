"""Layer 9, workflows: the notebook pipeline, the evaluation grid, pretraining, the
ablation, scaling measurements, the book runner and its checks, and the architecture
of this package.
"""
