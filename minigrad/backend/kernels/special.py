"""Special functions on arrays: erf.

erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise, in the array's own module
(numpy or cupy). scipy / cupyx provide it when installed; otherwise two expansions,
each within about 1e-15 of the true value where it is used:
    |x| < 2:   erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))
               (all terms positive, so no cancellation)
    |x| >= 2:  erf(x) = 1 - erfc(x), with the continued fraction
               erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))),
               which converges fast away from 0 (an asymptotic series would stall
               near 1e-4 at x = 3).
"""
import numpy

from .. import get_array_module

_SQRT_PI = 1.7724538509055159


def erf(x):
    """erf(x) elementwise, in x's dtype where the library keeps it."""
    special = _special_module(x)
    if special is not None:
        return special.erf(x)
    return erf_series(x)


def _special_module(x):
    """scipy.special for numpy arrays, cupyx.scipy.special for cupy ones, or None."""
    try:
        if isinstance(x, numpy.ndarray):
            import scipy.special as special
        elif type(x).__module__.startswith("cupy"):
            import cupyx.scipy.special as special
        else:
            return None
    except ImportError:
        return None
    return special


def erf_series(x):
    """erf from the two expansions above (the path taken without scipy)."""
    xp = get_array_module(x)
    a = xp.abs(x)
    small = xp.minimum(a, 2.0)
    term = small.copy()
    total = small.copy()
    for n in range(1, 60):                       # x=2: ratio 8/(2n+1), the terms < 1e-17 by n=60
        term = term * (2.0 * small * small) / (2 * n + 1)
        total = total + term
    series = 2.0 / _SQRT_PI * xp.exp(-small * small) * total
    big = xp.maximum(a, 2.0)
    fraction = big.copy()
    for k in range(60, 0, -1):                   # evaluated from the tail inwards
        fraction = big + (k / 2.0) / fraction
    erfc = xp.exp(-big * big) / (_SQRT_PI * fraction)
    return xp.sign(x) * xp.where(a < 2.0, series, 1.0 - erfc)

