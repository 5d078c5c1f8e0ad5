"""The exercises and their checks: what `python lessons check` runs.

Each check builds a few small cases (float64, fixed seeds), asks minigrad for the
answer (autograd, confirmed by mg.gradcheck, or minigrad's own optimizer) and compares
the student's function with it through grading.expect, listing the usual mistakes
with a hint for each. A check returns how many cases it ran.

    check(names, folder) -> [Result]   the exercises `names`, from the files folder/<name>.py
    grade(name, module) -> Result      one exercise, with the functions `module` defines
    EXERCISES                          name -> Exercise, in the order of the course
"""
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import optim

from exercises.grading import (Failure, NotWritten, Result, call, central_difference, expect, load, outputs,
                               reference_gradients, shown)


class Exercise:
    def __init__(self, name, functions, summary, check):
        self.name, self.functions, self.summary, self.check = name, functions, summary, check


EXERCISES = {}


def exercise(name, functions, summary):
    """Register the decorated check(module) -> number of cases, as exercise `name`."""
    def register(check):
        EXERCISES[name] = Exercise(name, functions, summary, check)
        return check
    return register


def grade(name, module):
    """Run exercise `name` on the functions that `module` defines."""
    entry = EXERCISES[name]
    missing = [function for function in entry.functions if not callable(getattr(module, function, None))]
    if missing:
        return Result(name, "FAIL", f"{shown(module.__file__)} defines no function {', '.join(missing)}")
    try:
        cases = entry.check(module)
    except NotWritten as todo:
        return Result(name, "TODO", str(todo))
    except Failure as failure:
        return Result(name, "FAIL", str(failure))
    return Result(name, "PASS", f"{', '.join(entry.functions)}: {cases} cases match minigrad")


def check(names, folder):
    """Grade the exercises `names` from the files folder/<name>.py, in order."""
    results = []
    for name in names:
        path = folder / f"{name}.py"
        if not path.is_file():
            results.append(Result(name, "FAIL", f"there is no file {shown(path)}"))
            continue
        module = load(path)
        results.append(module if isinstance(module, Result) else grade(name, module))
    return results


# --------------------------------------------------------------------------- the exercises
@exercise("matmul", ["matmul_backward"], "dL/dA and dL/dB of Y = A @ B (B shared by a batch)")
def check_matmul(module):
    rng = np.random.default_rng(0)
    shapes = [((3, 4), (4, 2)), ((1, 5), (5, 1)), ((2, 3, 4), (4, 5))]
    for a_shape, b_shape in shapes:
        a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
        g = rng.standard_normal(a_shape[:-1] + b_shape[-1:])
        case = f"A {a_shape} @ B {b_shape}"
        expected = reference_gradients(lambda A, B: A @ B, [a, b], g, wrt=(0, 1))
        got = outputs(call(module, "matmul_backward", g.copy(), a.copy(), b.copy()), ["dA", "dB"],
                      "matmul_backward")
        numeric = [central_difference(lambda A, B: A @ B, [a, b], g, i) for i in (0, 1)]
        batch_axes = tuple(range(len(a_shape) - 2))
        expect("matmul_backward", case, "dA", got[0], expected[0], numeric[0],
               hint="dL/dA_ip = sum_j G_ij B_pj, that is G @ B^T")
        dB_first = (np.swapaxes(a, -1, -2) @ g)[(0,) * len(batch_axes)]
        expect("matmul_backward", case, "dB", got[1], expected[1], numeric[1],
               mistakes=[(dB_first, "your dB uses only the first item of the batch: B is used by every item, "
                                    "so its gradient is the sum of A^T @ G over the batch axes")],
               hint="dL/dB_pj = sum_i A_ip G_ij, that is A^T @ G, summed over any batch axes of A")
    return len(shapes)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@exercise("softmax", ["softmax_backward"], "dL/dx of y = softmax(x) over the last axis, from y")
def check_softmax(module):
    rng = np.random.default_rng(1)
    shapes = [(5,), (3, 4), (2, 3, 6)]
    for shape in shapes:
        x, g = 2 * rng.standard_normal(shape), rng.standard_normal(shape)
        y = softmax(x)
        forward = lambda x: F.softmax(x, axis=-1)                            # noqa: E731
        (expected,) = reference_gradients(forward, [x], g, wrt=(0,))
        (got,) = outputs(call(module, "softmax_backward", g.copy(), y.copy()), ["dx"], "softmax_backward")
        expect("softmax_backward", f"x of shape {shape}", "dx", got, expected,
               central_difference(forward, [x], g, 0),
               mistakes=[(g * y * (1 - y), "you kept only the diagonal of the Jacobian: y_i depends on every "
                                           "x_j of its row, dy_i/dx_j = y_i (delta_ij - y_j)"),
                         (y * (g - (g * y).sum()), "the sum over g * y is per row (axis=-1, keepdims=True), "
                                                   "not over the whole array")],
               hint="dx_j = sum_i g_i y_i (delta_ij - y_j) = y_j (g_j - sum_i g_i y_i), the sum over the last axis")
    return len(shapes)


@exercise("cross_entropy", ["cross_entropy_backward"], "dL/dlogits of the mean cross-entropy")
def check_cross_entropy(module):
    rng = np.random.default_rng(2)
    shapes = [((1, 3), 1.0, 0.0), ((4, 5), 1.0, 0.0), ((6, 10), 3.0, 0.0), ((3, 4), 50.0, 1000.0)]
    for (n, c), scale, shift in shapes:
        logits = scale * rng.standard_normal((n, c)) + shift
        target = rng.integers(0, c, size=n)
        case = f"logits ({n}, {c})" + (f" around {shift:g}, spread {scale:g}" if shift else "")
        forward = lambda z: F.cross_entropy(z, target)                          # noqa: E731
        (expected,) = reference_gradients(forward, [logits], 1.0, wrt=(0,))
        (got,) = outputs(call(module, "cross_entropy_backward", logits.copy(), target.copy()), ["dlogits"],
                         "cross_entropy_backward")
        p = softmax(logits)
        onehot = np.eye(c)[target]
        expect("cross_entropy_backward", case, "dlogits", got, expected,
               central_difference(forward, [logits], 1.0, 0),
               mistakes=[(p - onehot, "this is the gradient of the SUM over the rows: the loss is their mean, "
                                      "so divide by N"),
                         ((onehot - p) / n, "the sign is flipped: L = -log p_target, so dL/dz = p - onehot"),
                         (p / n, "the -1 at the target class is missing: dL/dz_c = (p_c - [c == target]) / N")],
               hint="dL/dz = (softmax(z) - onehot(target)) / N, with softmax computed stably "
                    "(subtract each row's maximum before exp)")
    return len(shapes)


def layer_norm(x, eps):
    mean = x.mean(axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    return (x - mean) * inv_std, inv_std


@exercise("layer_norm", ["layer_norm_backward"], "dL/dx, dL/dweight, dL/dbias of layer normalisation")
def check_layer_norm(module):
    rng = np.random.default_rng(3)
    shapes = [((1, 4), 1e-5), ((3, 5), 1e-5), ((2, 3, 8), 1e-5), ((4, 6), 0.5)]
    for shape, eps in shapes:
        x = 2.0 * rng.standard_normal(shape) + 3.0
        weight, bias = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
        g = rng.standard_normal(shape)
        case = f"x {shape}, eps={eps:g}"
        forward = lambda x, w, b: F.layer_norm(x, w, b, eps=eps)               # noqa: E731
        expected = reference_gradients(forward, [x, weight, bias], g, wrt=(0, 1, 2))
        got = outputs(call(module, "layer_norm_backward", g.copy(), x.copy(), weight.copy(), eps),
                      ["dx", "dweight", "dbias"], "layer_norm_backward")
        numeric = [central_difference(forward, [x, weight, bias], g, i) for i in range(3)]
        x_hat, inv_std = layer_norm(x, eps)
        g_hat = g * weight
        d = shape[-1]
        leading = tuple(range(len(shape) - 1))
        unbiased_inv_std = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True, ddof=1) + eps)
        expect("layer_norm_backward", case, "dbias", got[2], expected[2], numeric[2],
               hint="bias is added to every row: dL/dbias = g summed over every axis but the last")
        unbiased = f"layer norm's variance divides by d = {d} (biased), not d - 1"
        expect("layer_norm_backward", case, "dweight", got[1], expected[1], numeric[1],
               mistakes=[((g * x).sum(axis=leading), "dweight multiplies g by the NORMALISED x: "
                                                     "sum of g * (x - mean) / sqrt(var + eps)"),
                         ((g * x_hat * unbiased_inv_std / inv_std).sum(axis=leading), unbiased)],
               hint="y = x_hat * weight + bias, so dL/dweight = sum over rows of g * x_hat")
        expect("layer_norm_backward", case, "dx", got[0], expected[0], numeric[0],
               mistakes=[(g_hat * inv_std, "you treated the mean and the variance as constants: both depend "
                                           "on x, which adds two terms (see the math in the file)"),
                         ((g_hat - g_hat.mean(-1, keepdims=True)) * inv_std,
                          "the path through the variance is missing: add -x_hat * mean(g_hat * x_hat) "
                          "inside the bracket"),
                         ((g_hat - x_hat * (g_hat * x_hat).mean(-1, keepdims=True)) * inv_std,
                          "the path through the mean is missing: subtract mean(g_hat) inside the bracket"),
                         ((g_hat - g_hat.mean(-1, keepdims=True)
                           - x_hat * (g_hat * x_hat).mean(-1, keepdims=True)) * unbiased_inv_std,
                          unbiased)],
               hint="with g_hat = g * weight: dx = (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)) "
                    "/ sqrt(var + eps), means over the last axis")
    return len(shapes)


@exercise("attention", ["attention_backward"], "dL/dq, dL/dk, dL/dv of softmax(q k^T / sqrt(d_k)) v")
def check_attention(module):
    rng = np.random.default_rng(4)
    causal = np.tril(np.ones((4, 4), dtype=bool))
    shapes = [((3, 4), (5, 4), (5, 2), None), ((2, 3, 4), (2, 5, 4), (2, 5, 3), None),
              ((4, 3), (4, 3), (4, 3), causal), ((2, 4, 2), (2, 4, 2), (2, 4, 5), causal)]
    for q_shape, k_shape, v_shape, mask in shapes:
        q, k, v = (rng.standard_normal(s) for s in (q_shape, k_shape, v_shape))
        g = rng.standard_normal(q_shape[:-1] + v_shape[-1:])
        case = f"q {q_shape}, k {k_shape}, v {v_shape}" + (", causal mask" if mask is not None else "")
        forward = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask)   # noqa: E731
        expected = reference_gradients(forward, [q, k, v], g, wrt=(0, 1, 2))
        got = outputs(call(module, "attention_backward", g.copy(), q.copy(), k.copy(), v.copy(),
                           None if mask is None else mask.copy()), ["dq", "dk", "dv"], "attention_backward")
        numeric = [central_difference(forward, [q, k, v], g, i) for i in range(3)]
        scale = 1 / np.sqrt(q_shape[-1])
        scores = q @ k.swapaxes(-1, -2) * scale
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        p = softmax(scores)
        dp = g @ v.swapaxes(-1, -2)
        ds_diagonal = p * (1 - p) * dp
        ds = p * (dp - (dp * p).sum(-1, keepdims=True))
        unmasked = softmax(q @ k.swapaxes(-1, -2) * scale)
        expect("attention_backward", case, "dv", got[2], expected[2], numeric[2],
               mistakes=[(unmasked.swapaxes(-1, -2) @ g, "dv ignores the mask: recompute the weights with the "
                                                         "masked scores set to -inf before the softmax")],
               hint="out = P @ v, so dv = P^T @ g, with P the attention weights")
        expect("attention_backward", case, "dq", got[0], expected[0], numeric[0],
               mistakes=[(ds @ k, "dq misses the 1/sqrt(d_k): the scores are q k^T / sqrt(d_k)"),
                         (ds_diagonal @ k * scale, "the softmax backward kept only the diagonal of its Jacobian: "
                                                   "dS = P * (dP - sum(dP * P, axis=-1, keepdims=True))")],
               hint="dP = g @ v^T; dS = P * (dP - rowsum(dP * P)); dq = dS @ k / sqrt(d_k)")
        expect("attention_backward", case, "dk", got[1], expected[1], numeric[1],
               mistakes=[(ds.swapaxes(-1, -2) @ q, "dk misses the 1/sqrt(d_k): the scores are q k^T / sqrt(d_k)"),
                         (lambda: ds @ q * scale,
                          "dS needs transposing: S = q k^T / sqrt(d_k), so dk = dS^T @ q / sqrt(d_k)")],
               hint="dk = dS^T @ q / sqrt(d_k), the transpose taken over the last two axes only")
    return len(shapes)


@exercise("conv2d", ["col2im", "conv2d_backward"], "col2im, then dL/dx, dL/dweight, dL/dbias of a convolution")
def check_conv2d(module):
    rng = np.random.default_rng(5)
    im2col = module.im2col
    shapes = [((1, 1, 4, 4), (1, 1, 2, 2), 1, 0), ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
              ((2, 2, 7, 6), (3, 2, 3, 2), 2, 1), ((1, 2, 3, 3), (2, 2, 1, 1), 1, 0),
              ((1, 1, 6, 6), (2, 1, 2, 2), 2, 0)]
    for x_shape, w_shape, stride, padding in shapes:
        x, weight = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        bias = rng.standard_normal(w_shape[0])
        kernel = w_shape[2:]
        case = f"x {x_shape}, weight {w_shape}, stride {stride}, padding {padding}"
        # col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)> for every x and c, so
        # col2im(c)[i] = <im2col(e_i), c> with e_i the i-th unit image
        cols_shape = im2col(x, kernel, stride, padding).shape
        c = rng.standard_normal(cols_shape)
        expected_image = np.zeros(x_shape)
        assigned_image = np.zeros(x_shape)
        for index in np.ndindex(*x_shape):
            unit = np.zeros(x_shape)
            unit[index] = 1.0
            picked = im2col(unit, kernel, stride, padding)
            expected_image[index] = (picked * c).sum()
            found = np.flatnonzero(picked)
            assigned_image[index] = c.flat[found[-1]] if found.size else 0.0
        (got_image,) = outputs(call(module, "col2im", c.copy(), x_shape, kernel, stride, padding), ["image"],
                               "col2im")
        expect("col2im", case, "the image", got_image, expected_image, source="the adjoint of im2col",
               mistakes=[(assigned_image, "windows overlap: a pixel copied into several columns gets the SUM "
                                          "of their entries (+=, not =)")],
               hint="col2im(c)[n, ch, h, w] = sum of every entry of c that im2col copied from that pixel "
                    "(padding entries belong to no pixel)")
        forward = lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding)   # noqa: E731
        g = rng.standard_normal(tuple(forward(*(mg.tensor(a, dtype="float64") for a in (x, weight, bias))).shape))
        expected = reference_gradients(forward, [x, weight, bias], g, wrt=(0, 1, 2))
        got = outputs(call(module, "conv2d_backward", g.copy(), x.copy(), weight.copy(), stride, padding),
                      ["dx", "dweight", "dbias"], "conv2d_backward")
        numeric = [central_difference(forward, [x, weight, bias], g, i) for i in range(3)]
        cols = im2col(x, kernel, stride, padding)
        g_rows = g.reshape(g.shape[0], g.shape[1], -1)
        expect("conv2d_backward", case, "dbias", got[2], expected[2], numeric[2],
               hint="the bias is added at every position of every image: sum g over axes (0, 2, 3)")
        expect("conv2d_backward", case, "dweight", got[1], expected[1], numeric[1],
               mistakes=[((g_rows[0] @ cols[0].T).reshape(w_shape), "dweight uses only the first image: the "
                                                                    "weights serve every image, so sum over n")],
               hint="with W = weight.reshape(O, C*kh*kw) and cols = im2col(x): dW = sum_n g_n @ cols_n^T")
        expect("conv2d_backward", case, "dx", got[0], expected[0], numeric[0],
               hint="dcols_n = W^T @ g_n, then dx = col2im(dcols): each column entry goes back to its pixel")
    return len(shapes)


@exercise("adam", ["adam_step"], "one step of Adam (with PyTorch's coupled weight decay)")
def check_adam(module):
    rng = np.random.default_rng(6)
    settings = [((4,), 5, dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)),
                ((3, 2), 10, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.1)),
                ((5,), 4, dict(lr=0.05, betas=(0.9, 0.999), eps=0.1, weight_decay=0.0))]
    for shape, steps, hyper in settings:
        start = rng.standard_normal(shape)
        grads = [0.3 * rng.standard_normal(shape) for _ in range(steps)]
        case = f"param {shape}, {', '.join(f'{k}={v}' for k, v in hyper.items())}"
        # the reference: minigrad's optimizer, step by step
        p = mg.tensor(start.copy(), dtype="float64", requires_grad=True)
        opt = optim.Adam([p], **hyper)
        param, m, v = start.copy(), np.zeros(shape), np.zeros(shape)
        for t, grad in enumerate(grads, start=1):
            p.grad = mg.tensor(grad, dtype="float64")
            opt.step()
            state = opt.state_dict()
            expected = [p.numpy(), state["state.0.exp_avg"].numpy(), state["state.0.exp_avg_sq"].numpy()]
            mistakes = known_adam_mistakes(param, grad, m, v, t, **hyper)
            param, m, v = outputs(call(module, "adam_step", param.copy(), grad.copy(), m.copy(), v.copy(), t,
                                       **hyper), ["param", "m", "v"], "adam_step")
            where = f"{case}, step t={t}"
            expect("adam_step", where, "param", param, expected[0], mistakes=mistakes, source="optim.Adam",
                   hint="param <- param - lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - beta1^t), "
                        "v_hat = v / (1 - beta2^t)")
            raw = "return the raw moments (before the bias correction, which only the step uses), as PyTorch keeps"
            expect("adam_step", where, "m (the first moment)", m, expected[1], source="optim.Adam",
                   mistakes=[(expected[1] / (1 - hyper["betas"][0] ** t), raw)],
                   hint="m <- beta1 * m + (1 - beta1) * g, with g already including weight_decay * param")
            expect("adam_step", where, "v (the second moment)", v, expected[2], source="optim.Adam",
                   mistakes=[(expected[2] / (1 - hyper["betas"][1] ** t), raw)],
                   hint="v <- beta2 * v + (1 - beta2) * g^2 (elementwise square)")
    return len(settings)


def known_adam_mistakes(param, grad, m, v, t, lr, betas, eps, weight_decay):
    """What a few usual mistakes make of one step, each with the hint that names it."""
    beta1, beta2 = betas

    def step(grad, m_scale, v_scale, eps_inside=False, decoupled=0.0):
        m_new = beta1 * m + (1 - beta1) * grad
        v_new = beta2 * v + (1 - beta2) * grad * grad
        m_hat, v_hat = m_new * m_scale, v_new * v_scale
        denominator = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
        return param - lr * m_hat / denominator - lr * decoupled * param

    coupled = grad + weight_decay * param
    correction = (1 / (1 - beta1 ** t), 1 / (1 - beta2 ** t))
    uncorrected = ("a bias correction is missing: m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t), "
                   "with t counted from 1")
    mistakes = [(step(coupled, 1.0, 1.0), uncorrected),
                (step(coupled, 1.0, correction[1]), uncorrected),
                (step(coupled, correction[0], 1.0), uncorrected),
                (step(coupled, *correction, eps_inside=True), "eps goes outside the square root: "
                                                             "sqrt(v_hat) + eps")]
    if weight_decay:
        mistakes.append((step(grad, *correction, decoupled=weight_decay),
                         "that is AdamW's decoupled decay: Adam adds weight_decay * param to the gradient "
                         "before the moments"))
        mistakes.append((step(grad, *correction), "weight_decay is ignored: add weight_decay * param to g first"))
    return mistakes
