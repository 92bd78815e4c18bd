"""Layer 1, input and output: FITS reading and writing, the SDC1 WCS, catalogues (truth,
submission), DS9 regions and the data registry of real files.
"""
