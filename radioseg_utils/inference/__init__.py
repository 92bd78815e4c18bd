"""Layer 6, running a model on an image: tiling, the prediction settings, in-memory and
streamed prediction, resumable run folders and the dask cluster.
"""
