"""napari-sam-mis: click-and-box segmentation of CT and MRI with Segment-Anything-family models.

Importing the package is cheap: torch, napari and Qt are imported only by the modules that
need them.
"""

__version__ = "0.1.0"
