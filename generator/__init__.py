"""VGG16 Atlas generator: computes feature visualizations and renders the atlas site."""

__version__ = "0.1.0"
