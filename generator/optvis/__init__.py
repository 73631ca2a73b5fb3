"""How to draw a batch of units: parameterization, transforms, objectives, the render loop.

Modelled on lucid's optvis decomposition; the render loop knows nothing about VGG16.
"""
