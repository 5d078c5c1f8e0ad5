"""Per-example gradients from one backward pass: GradSampleModule.

The gradient of a batch's loss is a sum over its examples, and backward hands out
only the sum. DP-SGD needs each example's own gradient, to bound its influence. Run
the batch one example at a time and you pay B backward passes; instead, every layer
with weights already sees enough during the one pass: its input a (saved on the way
forward, by a forward hook) and the gradient g = dL/dy of its output (caught on the
way back, by a hook on the output tensor). For a Dense layer y = a W + b,

    dL/dW = sum_b a_b^T g_b       so example b's share is  a_b^T g_b     (in, out)
    dL/db = sum_b g_b             so example b's share is  g_b           (out,)

and with a sequence (a_b of shape (T, in)) both also sum over the T positions.
Each supported layer has such a rule (GRAD_SAMPLERS below):

    Dense         W: sum_t a_t (outer) g_t                  b: sum_t g_t
    Embedding     weight[ids]: row ids_t gets g_t; reverse (x @ weight^T): sum_t g_t (outer) x_t
    LayerNorm     weight: sum_t g_t * xhat_t                bias: sum_t g_t
    Conv2d        W: sum over output pixels p of g_p (outer) column_p (im2col)   b: sum_p g_p

Modules made of these (MultiHeadAttention, TransformerEncoderLayer, GPT, an MLP) need
nothing more. A module that holds parameters and has no rule is an error: BatchNorm2d,
for instance, normalises each example with statistics of the whole batch, so one
example's output (and gradient) depends on the others and "its own gradient" is not
defined (use LayerNorm, or GroupNorm-style normalisation, in private models).

Loss reduction: for loss = mean over the batch of l_b, g carries a factor 1/B, so the
rule's output is multiplied by B: p.grad_sample[b] is the gradient of l_b itself
(Opacus does the same). For a summed loss nothing is rescaled.

A parameter used anywhere but in its layer's call (a tied output matrix read in a
model's forward, a slice of a table) would get a per-example gradient that misses
those uses, silently. So after each forward, the graph is walked once and every
parameter's uses are counted against the layer calls that claimed it; a mismatch is
an error naming the parameter. (Uses inside the loss, outside the model, cannot be
seen here: keep weight penalties in the optimizer, as weight_decay.)
"""
from collections import Counter

from ..autograd import count_uses, graph_roots
from ..backend import kernels
from ..grad_mode import no_grad
from ..nn import Conv2d, Dense, Embedding, LayerNorm, Module
from ..ops.image import unfold
from ..tensor import Tensor, as_array
from .per_example import Materialised, OuterProducts, RowSums, combine

GRAD_SAMPLERS = {}      # layer class -> rule(layer, args, kwargs, g) -> [(parameter, per-example form)]


def register_grad_sampler(layer_class):
    """Decorator: rule(layer, args, kwargs, g) gives the per-example gradient forms
    (per_example.py) of layer_class's own parameters, from the arguments of one call and
    g = dL/d(output) of that call, scaled to the examples' own losses."""
    def register(rule):
        GRAD_SAMPLERS[layer_class] = rule
        return rule
    return register


def _rows(array, batch, width, layer):
    """(B, ..., width) -> (B, T, width), T = the product of the middle axes (1 if none)."""
    if array.ndim < 2 or array.shape[0] != batch:
        raise ValueError(f"GradSampleModule: {layer} got shape {tuple(array.shape)}; per-example gradients "
                         f"need the batch on axis 0 (B = {batch})")
    return array.reshape(batch, -1, width)


@register_grad_sampler(Dense)
def dense_grad_sample(layer, args, kwargs, g):
    """y = x W + b:  G_b(W) = sum_t x_bt (outer) g_bt (in, out);  G_b(b) = sum_t g_bt."""
    B = g.shape[0]
    x = _rows(as_array(args[0]), B, layer.n_in, "Dense")
    g = _rows(g, B, layer.n_out, "Dense")
    forms = [(layer.weight, OuterProducts(x, g, layer.weight.shape))]
    if layer.bias is not None:
        forms.append((layer.bias, Materialised(g.sum(axis=1))))
    return forms


@register_grad_sampler(Embedding)
def embedding_grad_sample(layer, args, kwargs, g):
    """Lookup y = weight[ids]: row ids_bt of G_b receives g_bt (repeated ids add up).
    Reverse y = x weight^T (an output layer tied to the table): G_b = sum_t g_bt (outer) x_bt."""
    B = g.shape[0]
    reverse = kwargs.get("reverse", args[1] if len(args) > 1 else False)
    if reverse:
        x = _rows(as_array(args[0]), B, layer.dim, "Embedding(reverse=True)")
        return [(layer.weight, OuterProducts(_rows(g, B, layer.num, "Embedding"), x, layer.weight.shape))]
    ids = as_array(args[0], layer.weight.device)
    if ids.ndim == 0 or ids.shape[0] != B:
        raise ValueError(f"GradSampleModule: Embedding got ids of shape {tuple(ids.shape)}; per-example "
                         f"gradients need the batch on axis 0 (B = {B})")
    return [(layer.weight, RowSums(ids.reshape(B, -1), _rows(g, B, layer.dim, "Embedding"), layer.num))]


@register_grad_sampler(LayerNorm)
def layer_norm_grad_sample(layer, args, kwargs, g):
    """y = xhat * weight + bias:  G_b(weight) = sum_t g_bt * xhat_bt;  G_b(bias) = sum_t g_bt
    (xhat recomputed from the saved input by the forward's own kernel: in float32 for
    float16 inputs, as the forward has it)."""
    B = g.shape[0]
    xhat = kernels.normalization.layer_norm_forward(as_array(args[0]), layer.weight.data, layer.bias.data,
                                                    layer.eps)[1]
    g = _rows(g, B, layer.d, "LayerNorm")
    weight_grads = (g * _rows(xhat, B, layer.d, "LayerNorm")).sum(axis=1).astype(g.dtype, copy=False)
    return [(layer.weight, Materialised(weight_grads)), (layer.bias, Materialised(g.sum(axis=1)))]


@register_grad_sampler(Conv2d)
def conv2d_grad_sample(layer, args, kwargs, g):
    """y_n = W cols_n + b with cols_n = im2col(x_n) (C*kh*kw, L):
    G_n(W) = sum over the L output pixels p of g_np (outer) cols_np;  G_n(b) = sum_p g_np."""
    N, O = g.shape[:2]
    with no_grad():
        cols = unfold(Tensor(as_array(args[0])), layer.kernel_size, layer.stride, layer.padding).data
    g = g.reshape(N, O, -1)                                             # (N, O, L)
    forms = [(layer.weight, OuterProducts(g.swapaxes(1, 2), cols.swapaxes(1, 2), layer.weight.shape))]
    if layer.bias is not None:
        forms.append((layer.bias, Materialised(g.sum(axis=2))))
    return forms


class GradSampleModule(Module):
    """GradSampleModule(model, loss_reduction="mean", grad_sample_mode="hooks")

    Wraps model; after loss.backward() on a batch of B examples (batch on axis 0),
    every trainable parameter p has

        grad_sample_mode="hooks":  p.grad_sample, a Tensor (B, *p.shape): example b's
                                   own gradient (as Opacus)
        grad_sample_mode="ghost":  p.grad_sample_parts, the per-example gradients kept
                                   in factored form (per_example.py): DPOptimizer gets
                                   their norms and clipped sum without ever forming
                                   the B x in x out arrays of the Dense layers

    p.grad (the batch gradient) is computed as usual. loss_reduction says whether the
    loss averages ("mean") or sums ("sum") over the examples (see the module docstring).
    Several backward passes before zero_grad() add up, as .grad does.

    The wrapper passes through: forward, parameters(), named_parameters(), state_dict()
    and load_state_dict() (without a "module." prefix), and any attribute it does not
    have (model.generate(...)); .module is the model. remove_hooks() unwraps it.
    """

    def __init__(self, model, loss_reduction="mean", grad_sample_mode="hooks"):
        super().__init__()
        if loss_reduction not in ("mean", "sum"):
            raise ValueError(f"GradSampleModule: loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}")
        if grad_sample_mode not in ("hooks", "ghost"):
            raise ValueError(f"GradSampleModule: grad_sample_mode must be 'hooks' or 'ghost', "
                             f"got {grad_sample_mode!r}")
        self.module = model
        self.loss_reduction, self.grad_sample_mode = loss_reduction, grad_sample_mode
        self._names = {id(p): name for name, p in model.named_parameters()}
        self._claims = Counter()            # id(parameter) -> layer calls that used it, this forward
        self._handles = []
        for name, layer in model.named_modules():
            own = [p for _, p in layer.named_parameters(recurse=False) if p.requires_grad]
            if not own:
                continue
            if type(layer) not in GRAD_SAMPLERS:
                raise ValueError(
                    f"GradSampleModule: {name or 'the model'} ({type(layer).__name__}) has trainable parameters "
                    f"but no per-example gradient rule; supported layers: "
                    f"{', '.join(sorted(c.__name__ for c in GRAD_SAMPLERS))}"
                    + (". BatchNorm2d mixes the examples of a batch (each is normalised with the batch's "
                       "statistics), so an example's own gradient is not defined: use LayerNorm instead"
                       if type(layer).__name__ == "BatchNorm2d" else ""))
            self._handles.append(layer.register_forward_hook(self._capture, with_kwargs=True))
        clear_grad_samples(model.parameters())

    # ---- pass-through
    def __getattr__(self, name):
        if name == "module" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.module, name)

    def named_parameters(self, prefix="", recurse=True):
        return self.module.named_parameters(prefix, recurse)

    def state_dict(self, prefix=""):
        return self.module.state_dict(prefix)

    def load_state_dict(self, state_dict, strict=True):
        return self.module.load_state_dict(state_dict, strict)

    def zero_grad(self, set_to_none=True):
        super().zero_grad(set_to_none)
        clear_grad_samples(self.parameters())

    def remove_hooks(self):
        """Take every hook off the model (it computes ordinary gradients only again)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ---- the work
    def forward(self, *args, **kwargs):
        self._claims = Counter()
        output = self.module(*args, **kwargs)
        self._check_every_use_is_hooked(output)
        return output

    def _capture(self, layer, args, kwargs, output):
        """Forward hook: keep this call's inputs, and ask for its output's gradient."""
        if not (isinstance(output, Tensor) and output.requires_grad):
            return None                     # no graph (no_grad, generation): nothing to do
        for _, param in layer.named_parameters(recurse=False):
            self._claims[id(param)] += 1
        output.register_hook(lambda grad: self._collect(layer, args, kwargs, grad.data))
        return None

    def _collect(self, layer, args, kwargs, g):
        """Tensor hook on a layer's output: g = dL/dy has arrived; turn it into the
        per-example gradients of the layer's parameters."""
        if self.loss_reduction == "mean":
            g = g * g.shape[0]              # the examples' own losses, not their 1/B shares
        for param, form in GRAD_SAMPLERS[type(layer)](layer, args, kwargs, g):
            if param.requires_grad:
                self._store(param, form)
        return None

    def _store(self, param, form):
        if self.grad_sample_mode == "ghost":
            parts = param.grad_sample_parts or []
            if parts and parts[0].batch_size != form.batch_size:
                raise RuntimeError(_batch_mismatch(self._names.get(id(param)), parts[0].batch_size,
                                                   form.batch_size))
            param.grad_sample_parts = parts + [form]
            return
        grads = form.materialise()
        if param.grad_sample is None:
            param.grad_sample = Tensor(grads)
        elif param.grad_sample.shape != grads.shape:
            raise RuntimeError(_batch_mismatch(self._names.get(id(param)), param.grad_sample.shape[0],
                                               grads.shape[0]))
        else:
            param.grad_sample.data = param.grad_sample.data + grads

    def _check_every_use_is_hooked(self, output):
        """Count the graph's edges into each parameter against the layer calls that
        claimed it (each supported layer uses each of its parameters once per call).
        A parameter the graph does not reach (frozen, or only in outputs thrown away)
        gets no gradient at all, so nothing is missed."""
        uses = count_uses(graph_roots(output))
        for key in self._names:
            count = uses.get(key)
            if count is not None and count != self._claims[key]:
                raise RuntimeError(
                    f"GradSampleModule: parameter {self._names[key]!r} is used {count} time(s) in the forward "
                    f"pass but only {self._claims[key]} use(s) went through its layer's call; a parameter read "
                    f"directly in a forward method (a tied output matrix, a slice of a table) gets no "
                    f"per-example gradient. Call the layer instead (e.g. Embedding(x, reverse=True) for a "
                    f"tied output layer, Embedding(position_ids) for positions)")


def _batch_mismatch(name, before, now):
    return (f"GradSampleModule: parameter {name!r} already holds per-example gradients for {before} examples "
            f"and now gets {now}; call zero_grad() (or the DP optimizer's) between batches")


def per_example_gradient(param):
    """The per-example gradient form (per_example.py) that backward left on param, or None."""
    if getattr(param, "grad_sample", None) is not None:
        return Materialised(param.grad_sample.data)
    parts = getattr(param, "grad_sample_parts", None)
    return combine(parts) if parts else None


def clear_grad_samples(params):
    for param in params:
        param.grad_sample = param.grad_sample_parts = None
