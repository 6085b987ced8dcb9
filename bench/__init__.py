"""``make bench``: speed and memory of iiif-process beside a reference pyvips pipeline and Pillow.

Not a test: ``python -m bench.run`` prints figures and targets and always exits 0.
"""
