"""Layer 2, simulation: the source population, beam-convolved source models, correlated
noise and the rendering of SDC1-like fields with their truth.
"""
