"""Helpers that stand beside the layers: checking gradients numerically, drawing graphs,
showing the progress of a long loop."""
from .gradcheck import GradcheckError, gradcheck  # noqa: F401
from . import viz  # noqa: F401
from .progress import progress  # noqa: F401
