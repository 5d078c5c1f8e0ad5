"""Helpers that stand beside the layers: checking gradients numerically, drawing graphs."""
from .gradcheck import GradcheckError, gradcheck  # noqa: F401
from . import viz  # noqa: F401
