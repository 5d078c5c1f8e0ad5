"""Pictures: the computation graph as Graphviz DOT text, and attention heatmaps (mg.viz).

    print(mg.viz.to_dot(loss))      # paste into `dot -Tpng` or an online viewer

Tensors are ellipses (labelled with name or shape), operations are boxes; the
edges follow the forward direction, inputs -> op -> output, the DAG that
backward walks in reverse.

    w = mg.viz.attention_weights(gpt, ids, layer=2)           # (B, heads, Tq, Tk)
    mg.viz.save_attention_heatmap(gpt, ids, path="a.png", layer=2, head=0, tokens=list("hello"))

"Layer" i is the i-th nn.MultiHeadAttention in model.named_modules() order: for
GPT and BERT the blocks' self-attentions in order; for nn.Transformer the encoder
layers' self-attentions, then each decoder layer's self_attn and cross_attn.
Row q of a head's weights, w[b, h, q, :], is softmax(q_q . k_k / sqrt(d_head)) over
the keys k: how much query position q reads from each key position (sums to 1).
matplotlib is optional (only the save_* functions need it); it is imported when
they are called and draws with its Agg backend into a file, never a window.
"""
from ..grad_mode import no_grad
from ..tensor import Tensor


def _label(tensor):
    name = f"{tensor.name}: " if tensor.name else ""
    return f"{name}{tensor.shape} {tensor.dtype}"


def to_dot(tensor):
    """The graph that produced `tensor`, in DOT. Walks iteratively (no recursion).
    Tensors that the graph no longer holds (intermediates already freed) are drawn
    by their op's name alone; inputs that needed no gradient (constants) are left out."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expected a Tensor, got {type(tensor).__name__}")
    lines = ["digraph minigrad {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    seen = set()

    def node(value):
        """The DOT id of a tensor or (for an op's output) of the op's output tensor."""
        if isinstance(value, Tensor):
            return f"t{id(value)}", value
        output = value.output_ref() if "output_ref" in value.__dict__ else None
        return (f"t{id(output)}", output) if output is not None else (f"t{id(value)}", None)

    stack = [tensor.grad_fn or tensor]
    while stack:
        item = stack.pop()
        key, t = node(item)
        if key in seen:
            continue
        seen.add(key)
        if t is None:
            lines.append(f'  {key} [label="output of {type(item).__name__}", shape=ellipse];')
        else:
            colour = ', style=filled, fillcolor="lightblue"' if t.is_leaf and t.requires_grad else ""
            lines.append(f'  {key} [label="{_label(t)}", shape=ellipse{colour}];')
        if isinstance(item, Tensor):
            continue
        lines.append(f'  f{id(item)} [label="{type(item).__name__}", shape=box];')
        lines.append(f"  f{id(item)} -> {key};")
        for source in item.next_nodes:
            if source is not None:
                lines.append(f"  {node(source)[0]} -> f{id(item)};")
                stack.append(source)
    lines.append("}")
    return "\n".join(lines) + "\n"


def attention_modules(model):
    """[(name, module)] for every nn.MultiHeadAttention in model, in named_modules() order."""
    from ..nn.attention import MultiHeadAttention      # viz is imported before nn
    return [(name, module) for name, module in model.named_modules() if isinstance(module, MultiHeadAttention)]


def _attention_module(model, layer):
    found = attention_modules(model)
    if not found:
        raise ValueError(f"attention_weights: {type(model).__name__} has no nn.MultiHeadAttention")
    names = [name for name, _ in found]
    if isinstance(layer, str):
        if layer not in names:
            raise ValueError(f"attention_weights: no attention module named {layer!r}; there are {names}")
        return found[names.index(layer)][1]
    if not isinstance(layer, int) or not -len(found) <= layer < len(found):
        raise IndexError(f"attention_weights: layer {layer!r} is out of range: {type(model).__name__} has "
                         f"{len(found)} attention modules (0..{len(found) - 1}): {names}")
    return found[layer][1]


def attention_weights(model, *inputs, layer=0, **kwargs):
    """Weights (B, n_heads, Tq, Tk) of attention module `layer` (an index into
    attention_modules(model), negative counts from the end, or its name) when
    model(*inputs, **kwargs) runs.

    A forward hook on that module captures the query, key and mask it is called
    with, and the weights are recomputed from them with the module's own projections:
        weights[b, h] = softmax((query W_q + b_q)_h (key W_k + b_k)_h^T / sqrt(d_head)),
    masked keys at 0, as in evaluation: no dropout, so every row sums to 1 (a query
    that may attend to no key gets a row of zeros). With a KVCache the keys are the
    cached ones. The model runs in eval mode without a graph; its mode is restored
    and the hook removed afterwards, even on an error."""
    module = _attention_module(model, layer)
    captured = []

    def capture(module, args, kwargs, output):
        captured.append(_recompute_weights(module, args, kwargs))

    handle = module.register_forward_hook(capture, with_kwargs=True)
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            model(*inputs, **kwargs)
    finally:
        model.train(was_training)
        handle.remove()
    if not captured:
        raise RuntimeError(f"attention_weights: layer {layer!r} did not run in {type(model).__name__}'s forward")
    return captured[-1]


def _recompute_weights(module, args, kwargs):
    """softmax(Q K^T / sqrt(d_head)) of one MultiHeadAttention call, from the arguments
    that forward(query, key=None, value=None, mask=None, ..., cache=None) received."""
    from .. import functional as F
    names = ("query", "key", "value", "mask")
    call = {**dict(zip(names, args)), **kwargs}
    query = call["query"]
    key = query if call.get("key") is None else call["key"]
    q = module.split_heads(module.q_proj(query))                       # (B, h, Tq, d_head)
    cache = call.get("cache")
    k = cache.k if cache is not None else module.split_heads(module.k_proj(key))   # (B, h, Tk, d_head)
    _, weights = F.scaled_dot_product_attention(q, k, k, mask=call.get("mask"), dropout_p=0.0,
                                                return_weights=True, training=False)
    return weights


def _matplotlib_figure():
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError("minigrad.viz heatmaps need matplotlib, an optional extra: "
                          "pip install matplotlib") from error
    # a Figure not made through pyplot draws with Agg into files and opens no window
    from matplotlib.figure import Figure
    return matplotlib, Figure


def save_heatmap(weights_2d, path, x_labels=None, y_labels=None, title=None, cmap="viridis"):
    """Write a PNG (or any format matplotlib infers from path) of a 2-D array: row i
    drawn at y position i, column j at x position j, with a colour bar.
    weights_2d: Tensor or array (rows, columns); x_labels: one per column,
    y_labels: one per row (None: numbered). Returns path."""
    from .. import backend
    data = weights_2d.numpy() if isinstance(weights_2d, Tensor) else backend.to_numpy(weights_2d)
    if data.ndim != 2:
        raise ValueError(f"save_heatmap: expected a 2-D array, got shape {tuple(data.shape)}")
    rows, columns = data.shape
    for labels, count, axis in ((x_labels, columns, "x_labels (one per column)"),
                                (y_labels, rows, "y_labels (one per row)")):
        if labels is not None and len(labels) != count:
            raise ValueError(f"save_heatmap: {len(labels)} {axis} for an array of shape {data.shape}")
    _, Figure = _matplotlib_figure()
    # about a third of an inch per cell, within limits that keep the labels legible
    figure = Figure(figsize=(min(max(3 + 0.3 * columns, 4), 20), min(max(2.5 + 0.3 * rows, 3.5), 20)))
    axes = figure.subplots()
    image = axes.imshow(data, cmap=cmap, aspect="auto", interpolation="nearest")
    figure.colorbar(image, ax=axes)
    if x_labels is not None:
        axes.set_xticks(range(columns))
        axes.set_xticklabels([str(label) for label in x_labels], rotation=90)
    if y_labels is not None:
        axes.set_yticks(range(rows))
        axes.set_yticklabels([str(label) for label in y_labels])
    if title:
        axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    return path


def save_attention_heatmap(model, *inputs, path, layer=0, head=0, tokens=None, batch_index=0,
                           key_tokens=None, **kwargs):
    """Draw head `head` of attention module `layer` for example `batch_index` of
    model(*inputs, **kwargs): rows are queries (y axis, labelled with tokens), columns
    keys (x axis, labelled with key_tokens, which default to tokens: pass them for
    cross-attention, whose keys are another sequence). Returns the (Tq, Tk) weights drawn."""
    weights = attention_weights(model, *inputs, layer=layer, **kwargs)
    B, n_heads, Tq, Tk = weights.shape
    if not -n_heads <= head < n_heads:
        raise IndexError(f"save_attention_heatmap: head {head} is out of range: layer {layer!r} has "
                         f"{n_heads} heads (0..{n_heads - 1})")
    if not -B <= batch_index < B:
        raise IndexError(f"save_attention_heatmap: batch_index {batch_index} is out of range for a batch of {B}")
    key_tokens = tokens if key_tokens is None else key_tokens
    if tokens is not None and len(tokens) != Tq:
        raise ValueError(f"save_attention_heatmap: {len(tokens)} tokens for {Tq} query positions")
    if key_tokens is not None and len(key_tokens) != Tk:
        raise ValueError(f"save_attention_heatmap: {len(key_tokens)} key tokens for {Tk} key positions "
                         f"(cross-attention: pass key_tokens)")
    picture = weights.numpy()[batch_index, head]
    save_heatmap(picture, path, x_labels=key_tokens, y_labels=tokens,
                 title=f"layer {layer}, head {head}: query (row) attends to key (column)")
    return picture
