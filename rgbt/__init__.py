"""rgbt: multispectral (RGB + thermal) pedestrian detection."""

__version__ = "0.1.0"
