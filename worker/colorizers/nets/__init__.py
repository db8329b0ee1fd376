"""Feed-forward colorization networks (pure torch).

Normalisation shared by every net here unless its docstring says otherwise: input ``L / 50 - 1`` in
[-1, 1], shape (N, 1, H, W); output ``ab / 128`` in [-1, 1] (tanh), shape (N, 2, H, W).
"""
