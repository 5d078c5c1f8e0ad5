"""The elementwise kernels again, as single CUDA kernels for cupy (cupy.ElementwiseKernel).

On the GPU each numpy-style call is a kernel launch and a full pass over memory; the
formulas below are the same as the CPU kernels' (activations.py, optimizers.py), each
compiled once into one kernel that reads its inputs and writes its outputs once.

    gelu_forward   y = x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 (also returns Phi)
    gelu_backward  dL/dx = g * (Phi(x) + x * exp(-x^2 / 2) / sqrt(2 pi))
    gelu_tanh_forward / gelu_tanh_backward   the tanh form (activations.py)
    adam_update    AdamW / Adam (L2) in place on w, m, v (optimizers.py)

`kernel(xp, name)` returns None for an array module without ElementwiseKernel (numpy,
the cupy test double) and for dtypes other than float32 / float64; the callers then use
the array code, which computes the same thing.
"""
_SOURCES = {
    "gelu_forward": ("T x", "T y, T cdf",
                     "cdf = (T)0.5 * ((T)1 + erf(x * (T)0.7071067811865476)); y = x * cdf;"),
    "gelu_backward": ("T g, T x, T cdf", "T dx",
                      "dx = g * (cdf + x * exp((T)-0.5 * x * x) * (T)0.3989422804014327);"),
    "gelu_tanh_forward": ("T x", "T y",
                          "T t = tanh((T)0.7978845608028654 * (x + (T)0.044715 * x * x * x));"
                          "y = (T)0.5 * x * ((T)1 + t);"),
    "gelu_tanh_backward": ("T g, T x", "T dx",
                           "T t = tanh((T)0.7978845608028654 * (x + (T)0.044715 * x * x * x));"
                           "dx = g * ((T)0.5 * ((T)1 + t) + (T)0.5 * (T)0.7978845608028654 * x * ((T)1 - t * t)"
                           " * ((T)1 + (T)3 * (T)0.044715 * x * x));"),
    "adam_update": ("T g, float64 step_size, float64 correction, float64 beta1, float64 beta2, float64 eps, "
                    "float64 l2, float64 decay", "T w, T m, T v",
                    "T grad = g; if (l2 != 0) grad += (T)l2 * w; if (decay != 0) w *= (T)(1 - decay);"
                    "m = (T)beta1 * m + (T)(1 - beta1) * grad;"
                    "v = (T)beta2 * v + (T)(1 - beta2) * (grad * grad);"
                    "w -= (T)step_size * (m / (sqrt(v) / (T)correction + (T)eps));"),
}
_compiled = {}


def kernel(xp, name, dtype):
    """The compiled cupy kernel `name`, or None where the array code must do (see above)."""
    if not hasattr(xp, "ElementwiseKernel") or str(dtype) not in ("float32", "float64"):
        return None
    if name not in _compiled:
        in_params, out_params, body = _SOURCES[name]
        _compiled[name] = xp.ElementwiseKernel(in_params, out_params, body, f"minigrad_{name}")
    return _compiled[name]
