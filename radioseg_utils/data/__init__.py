"""Layer 3, training data: segmentation masks and centre heat maps from a truth
catalogue, input normalisations, augmentation, the train/val/test split, shards on disk and
the input pipeline.
"""
