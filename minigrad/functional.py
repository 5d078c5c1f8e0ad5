"""Functions built on the ops: activations, normalisation, losses, attention.

    import minigrad.functional as F

Every function here takes and returns Tensors and is differentiable because it
is made of differentiable pieces; softmax, log_softmax, layer_norm, gelu,
cross_entropy (with class ids) and scaled_dot_product_attention (without dropout or
returned weights) are fused ops (minigrad/ops/composite.py), each tested equal to its
composed form.
"""
from . import backend, ops
from .ops.composite import (AttentionOp, CrossEntropyOp, GeluOp, LayerNormOp, LogSoftmaxOp, SoftmaxOp,
                             attention_weights_composed)
from .ops.losses import BinaryCrossEntropy
from .ops.shape import normalize_axis
from .ops.image import adaptive_avg_pool2d, avg_pool2d, batch_norm, conv2d, max_pool2d  # noqa: F401  (images)
from .tensor import Tensor, as_tensors, as_array

relu = ops.relu
sigmoid = ops.sigmoid
tanh = ops.tanh


def gelu(x, approximate="none"):
    """GELU(x) = x * Phi(x); approximate="tanh" uses the tanh formula (GPT-2's)."""
    return GeluOp(approximate)(x)


def softmax(x, axis=-1):
    """softmax(x)_i = exp(x_i) / sum_j exp(x_j) along `axis`, computed stably.
    As PyTorch: a 0-d x gives 1, an empty axis an empty result."""
    return _along_axis(SoftmaxOp, x, axis, "softmax")


def log_softmax(x, axis=-1):
    """log softmax(x) = x - logsumexp(x) along `axis`, computed stably.
    As PyTorch: a 0-d x gives 0, an empty axis an empty result."""
    return _along_axis(LogSoftmaxOp, x, axis, "log_softmax")


def _along_axis(op, x, axis, name):
    """op(axis)(x) after checking the axis; the 0-d and empty cases the kernels need not see."""
    if x.ndim == 0:
        normalize_axis(axis, 0, name)
        return op(0)(x.reshape(1)).reshape(())
    axis, = normalize_axis(axis, x.ndim, name)
    return op(axis)(x) if x.shape[axis] else x.clone()


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis;
    var is biased (divides by d). x (..., d), weight and bias (d,) or None."""
    d = x.shape[-1]
    xp = backend.get_array_module(x.data)
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and param.shape != (d,):
            raise ValueError(f"layer_norm: {name} has shape {param.shape}, expected ({d},) "
                             f"for input of shape {x.shape}")
    weight = weight if weight is not None else Tensor(xp.ones(d, dtype=x.dtype))
    bias = bias if bias is not None else Tensor(xp.zeros(d, dtype=x.dtype))
    return LayerNormOp(eps)(x, weight, bias)


def dropout(x, p=0.5, training=True):
    """Inverted dropout. In training, y = x * m / (1 - p) with m_i ~ Bernoulli(1 - p):
    each element is zeroed with probability p and the rest scaled up, so E[y] = x and
    evaluation needs no rescaling. The identity when not training or p == 0; zeros when
    p == 1. The mask is drawn on x's device, from a generator seeded by mg.manual_seed
    (backend.generator).   dL/dx = g * m / (1 - p)"""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    scale = backend.kernels.dropout.dropout_scale(backend.generator(x.device), x.shape, p, x.dtype)
    return x * Tensor._from_array(scale)


def _reduce(values, reduction, name, count=None):
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        return values.sum() / (count if count is not None else max(values.size, 1))
    raise ValueError(f'{name}: reduction must be "mean", "sum" or "none", got {reduction!r}')


def mse_loss(pred, target, reduction="mean"):
    """Mean squared error: mean((pred - target)^2), or its sum, or per element ("none").
    pred and target must have the same shape (PyTorch broadcasts them with a warning;
    here that mistake, e.g. (n, 1) against (n,), is an error).
    dL/dpred = 2 (pred - target) / n for "mean"."""
    pred, target = as_tensors([pred, target])
    if pred.shape != target.shape:
        raise ValueError(f"mse_loss: pred shape {pred.shape} and target shape {target.shape} differ")
    diff = pred - target
    return _reduce(diff * diff, reduction, "mse_loss")


def cross_entropy(logits, target, ignore_index=None, label_smoothing=0.0, reduction="mean"):
    """Cross-entropy between softmax(logits) and the target classes.

    logits (..., C) with the class axis LAST (PyTorch puts it second, (N, C, ...));
    target: integer class ids of shape (...), or class probabilities of shape (..., C).
    With smoothing e the target distribution is q = (1 - e) onehot(target) + e / C
    (PyTorch's definition), and with log p = log_softmax(logits)
        loss = -sum_c q_c log p_c = -(1 - e) log p_target - (e / C) sum_c log p_c
    Positions whose target is ignore_index contribute nothing, whatever their logits
    (inf and NaN included: they are selected away, not multiplied by 0); "none" gives 0
    there, and "mean" divides by the number of the other positions (as PyTorch does; if
    all are ignored the mean is 0, where PyTorch gives nan). Class ids go through one
    fused op (ops.composite.CrossEntropyOp); probability targets are differentiable.
    dL/dlogits = softmax(logits) - q per position (times its weight in the reduction);
    dL/dtarget_c = -(1 - e) log p_c for probability targets.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f'cross_entropy: reduction must be "mean", "sum" or "none", got {reduction!r}')
    n_classes = logits.shape[-1]
    target_data = as_array(target, logits.device)
    if target_data.dtype.kind == "f" and target_data.shape == logits.shape:
        probs = target if isinstance(target, Tensor) else Tensor(target_data)
        if probs.dtype != logits.dtype:
            probs = probs.astype(logits.dtype)
        log_probs = log_softmax(logits, axis=-1)
        per_position = -(log_probs * probs).sum(axis=-1)
        if label_smoothing:
            per_position = ((1 - label_smoothing) * per_position
                            - label_smoothing / n_classes * log_probs.sum(axis=-1))
        return _reduce(per_position, reduction, "cross_entropy")
    if target_data.shape != logits.shape[:-1]:
        raise ValueError(f"cross_entropy: target shape {tuple(target_data.shape)} does not match logits "
                         f"shape {logits.shape} without its class axis {logits.shape[:-1]}")
    if target_data.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: class ids must be integers, got dtype {target_data.dtype} "
                        f"(probability targets need the logits' shape {logits.shape})")
    ids, valid, count = _class_ids("cross_entropy", target_data, n_classes, ignore_index)
    flat_valid = None if valid is None else valid.reshape(-1)
    per_position = CrossEntropyOp(ids.reshape(-1), flat_valid, label_smoothing)(
        logits.reshape(-1, n_classes)).reshape(target_data.shape)
    return _reduce(per_position, reduction, "cross_entropy", count=count)


def _class_ids(name, ids, n_classes, ignore_index):
    """(ids with the ignored positions set to 0, valid = ids != ignore_index or None, the
    number of valid positions (at least 1: the divisor of "mean") or None), after checking
    that the ids that count lie in [0, n_classes)."""
    valid = None if ignore_index is None else ids != ignore_index
    if valid is not None:
        ids = backend.get_array_module(ids).where(valid, ids, 0)
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= n_classes):
        raise ValueError(f"{name}: target ids must lie in [0, {n_classes}), "
                         f"got values from {int(ids.min())} to {int(ids.max())}")
    return ids, valid, None if valid is None else max(int(valid.sum()), 1)


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0, return_weights=False, training=True,
                                 is_causal=False):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V.

    q (..., Tq, d_k), k (..., Tk, d_k), v (..., Tk, d_v) -> (..., Tq, d_v); the
    leading axes broadcast (heads and batch).
    mask: boolean or 0/1 (array, list or Tensor), broadcastable to (..., Tq, Tk);
    True/1 = may attend. An additive float mask (0 / -inf, PyTorch's other convention)
    is an error: pass a boolean mask. is_causal=True adds the causal mask (query t sees
    keys <= t; with Tk > Tq the queries are the last Tq positions).
    A query that may attend to nothing gets all-zero weights, so a zero output and
    finite (zero) gradients, where a -inf fill would give NaN.
    dropout_p: dropout on the weights (only when `training`; PyTorch's function has
    no `training` flag and always drops when dropout_p > 0).
    return_weights=True returns (output, weights) with weights (..., Tq, Tk) the
    ones that multiplied V (after dropout, as in PyTorch's MultiheadAttention), so
    output == weights @ v always.

    Without dropout and weights this is one fused op (ops.composite.AttentionOp), which
    never holds every head's (Tq, Tk) weights at once; otherwise the steps below, with
    the weights as a Tensor.
    """
    d_k = q.shape[-1]
    if k.shape[-1] != d_k or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: q {q.shape}, k {k.shape}, v {v.shape}: "
                         f"need q and k to share d_k and k and v to share Tk")
    scores_shape = backend.numpy.broadcast_shapes(q.shape[:-2], k.shape[:-2]) + (q.shape[-2], k.shape[-2])
    allowed = attention_mask(mask, scores_shape, q.device, is_causal)
    dropping = bool(dropout_p) and training
    if not return_weights and not dropping:
        if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
            q, k, v = (x.broadcast_to(scores_shape[:-2] + x.shape[-2:]) for x in (q, k, v))
        return AttentionOp(allowed)(q, k, v)
    # step 1: similarity of every query with every key, scaled so that the scores' variance
    # does not grow with d_k (for unit-variance q and k, q.k has variance d_k; softmax would
    # saturate); step 2: normalise each query's scores into weights that sum to 1 over the keys
    weights = attention_weights_composed(q, k, allowed)
    if dropping:
        weights = dropout(weights, dropout_p, training)
    # step 3: each output is the weighted average of the values
    output = weights @ v
    return (output, weights) if return_weights else output


def attention_mask(mask, scores_shape, device, is_causal=False):
    """The boolean array (True = may attend) for a mask argument, checked against the scores'
    shape (..., Tq, Tk); None when nothing is masked."""
    xp = backend.xp_for(device)
    allowed = None
    if mask is not None:
        data = as_array(mask, device)
        if data.dtype.kind == "f" and bool(((data != 0) & (data != 1)).any()):
            raise ValueError("scaled_dot_product_attention: a float mask must hold only 0 and 1 (1 = may "
                             "attend); for an additive mask such as 0 / -inf, pass a boolean mask instead "
                             "(True = may attend, e.g. mask == 0)")
        allowed = data.astype(bool, copy=False)
        try:
            fits = backend.numpy.broadcast_shapes(allowed.shape, scores_shape) == tuple(scores_shape)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"scaled_dot_product_attention: mask of shape {tuple(allowed.shape)} does not "
                             f"broadcast to the scores' shape {tuple(scores_shape)} (..., Tq, Tk)")
    if is_causal:
        tq, tk = scores_shape[-2:]
        causal = xp.tril(xp.ones((tq, tk), dtype=bool), k=tk - tq)
        allowed = causal if allowed is None else allowed & causal
    return allowed


# --------------------------------------------------------------------------- more activations
def silu(x):
    """SiLU (swish): x * sigmoid(x)."""
    return ops.Silu()(x)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x."""
    return ops.LeakyRelu(negative_slope)(x)


def elu(x, alpha=1.0):
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return ops.Elu(alpha)(x)


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold (as PyTorch)."""
    return ops.Softplus(beta, threshold)(x)


def logsigmoid(x):
    """log(sigmoid(x)), computed without overflow."""
    return ops.LogSigmoid()(x)


def one_hot(ids, num_classes=-1):
    """ids (...) of integers -> (..., num_classes) int64 with a 1 at each id (num_classes
    -1: one more than the largest id, as PyTorch)."""
    data = as_array(ids)
    if data.dtype.kind not in "iu":
        raise TypeError(f"one_hot: ids must be integers, got {data.dtype}")
    largest = int(data.max()) if data.size else -1
    if num_classes == -1:
        num_classes = largest + 1
    if data.size and (int(data.min()) < 0 or largest >= num_classes):
        raise ValueError(f"one_hot: ids must lie in [0, {num_classes}), got {int(data.min())} to {largest}")
    xp = backend.get_array_module(data)
    return Tensor._from_array((data[..., None] == xp.arange(num_classes)).astype("int64"))


def pad(x, pad, mode="constant", value=0.0):
    """x padded with `value`: pad = (before, after) widths for the last axis, then the one
    before it, ... (PyTorch's order); negative widths cut instead. mode: "constant" only.
    dL/dx = g with the padding cut off."""
    if mode != "constant":
        raise ValueError(f'pad: only mode="constant" is implemented, got {mode!r}')
    return ops.pad(x, pad, value)


# --------------------------------------------------------------------------- more losses
def _check_same_shape(name, a, b):
    if a.shape != b.shape:
        raise ValueError(f"{name}: input shape {a.shape} and target shape {b.shape} differ")


def nll_loss(log_probs, target, ignore_index=None, reduction="mean"):
    """Negative log-likelihood of the target classes: -log_probs[..., target].

    log_probs (..., C), class axis LAST (as cross_entropy here; PyTorch puts it second);
    target: integer class ids of shape (...). Positions whose target is ignore_index
    contribute 0 (selected out, so NaN there stays out) and "mean" divides by the number
    of the others (0 if there are none; PyTorch gives nan).
    dL/dlog_probs = -1 at each target position (times its weight in the reduction)."""
    n_classes = log_probs.shape[-1] if log_probs.ndim else 0
    ids = as_array(target, log_probs.device)
    if ids.shape != log_probs.shape[:-1] or ids.dtype.kind not in "iu":
        raise ValueError(f"nll_loss: target must be integer ids of shape {log_probs.shape[:-1]} for "
                         f"log_probs of shape {log_probs.shape}, got {ids.dtype} {tuple(ids.shape)}")
    picked_ids, valid, count = _class_ids("nll_loss", ids, n_classes, ignore_index)
    flat = log_probs.reshape(-1, n_classes)                                   # (N, C)
    rows = backend.get_array_module(ids).arange(flat.shape[0])
    losses = -flat[rows, picked_ids.reshape(-1)].reshape(ids.shape)
    if valid is not None:
        losses = ops.where(Tensor._from_array(valid), losses, 0.0)
    return _reduce(losses, reduction, "nll_loss", count=count)


def binary_cross_entropy(p, target, weight=None, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) per element, each log clamped at -100 (PyTorch's);
    p (probabilities) and target (in [0, 1], may require grad) of one shape.
    dL/dp = (p - t) / (p (1 - p)),  dL/dt = log(1 - p) - log(p)   (per element)"""
    p, target = as_tensors([p, target])
    _check_same_shape("binary_cross_entropy", p, target)
    if p.size and not bool(((p.data >= 0) & (p.data <= 1)).all()):
        raise ValueError("binary_cross_entropy: input must hold probabilities in [0, 1] "
                         "(for logits use binary_cross_entropy_with_logits)")
    losses = BinaryCrossEntropy()(p, target)
    return _reduce(losses if weight is None else losses * weight, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(logits, target, weight=None, pos_weight=None, reduction="mean"):
    """binary_cross_entropy(sigmoid(x), t) computed stably from the logits x:
        loss = (1 - t) softplus(x) + pos_weight * t * softplus(-x)   (pos_weight 1: softplus(x) - t x)
    dL/dx = sigmoid(x) - t,  dL/dt = -x   (pos_weight 1; per element)"""
    logits, target = as_tensors([logits, target])
    _check_same_shape("binary_cross_entropy_with_logits", logits, target)
    exact = float("inf")                                     # no threshold: log(1 + e^x) exactly
    if pos_weight is None:
        losses = ops.Softplus(1.0, exact)(logits) - target * logits
    else:
        losses = ((1.0 - target) * ops.Softplus(1.0, exact)(logits)
                  + pos_weight * target * ops.Softplus(1.0, exact)(-logits))
    return _reduce(losses if weight is None else losses * weight, reduction, "binary_cross_entropy_with_logits")
