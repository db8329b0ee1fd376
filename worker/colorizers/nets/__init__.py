"""Colorization networks (pure torch), one per file, with torchvision's / the releases' parameter names.

Every colorization net's ``forward`` takes L in [0, 100] and returns ab in Lab units; each normalises inside
(the report's nets: ``L / 50 - 1`` in, ``ab / 128`` out, :mod:`worker.colorizers.lab`; Zhang et al.'s:
their releases' ``(L - 50) / 100`` and units of 110), as richzhang/colorization does. ``colorizer.py`` serves
a net through the :class:`~worker.colorizers.base.Colorizer` protocol; ``weights_file.py`` reads the weights
files we export. Nothing here imports training code.
"""
