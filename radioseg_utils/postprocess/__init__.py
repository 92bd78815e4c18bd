"""Layer 5, from probability maps to catalogues: thresholds, connected components, centre
peaks, source measurement, parameter calibration, per-source reliability (``p_real``)
and catalogue blocks.
"""
