"""Layer 0, the core: SDC1 bands, project paths, noise statistics, Gaussian beam
geometry, provenance, and cross-matching of sky positions. Imports nothing else of the
package.
"""
