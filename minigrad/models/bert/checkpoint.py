"""Hugging Face BERT checkpoints: their names -> minigrad's, and loading them.

Hugging Face saves BertModel with names such as
"encoder.layer.0.attention.self.query.weight" and its Linear weights as
(out, in); minigrad's Dense keeps (in, out). load_bert_checkpoint renames
(CHECKPOINT_MODULES, the one table of the correspondence) and transposes; a
name it cannot place, a weight it needs but does not find, or a shape that does
not fit is an error that lists them all by name.

The encoder layers are nn.TransformerEncoderLayers, so the feed-forward's
two matrices live at layers.{i}.feed_forward.linear1 and .linear2 (the layer's
linear1 and linear2 properties read the same Dense layers).
"""
import re

from ... import backend, nn
from ...tensor import as_array

__all__ = ["CHECKPOINT_MODULES", "IGNORED_CHECKPOINT_NAMES", "checkpoint_has_pooler",
           "checkpoint_to_minigrad_name", "minigrad_to_checkpoint_name", "load_bert_checkpoint"]


# (checkpoint module, minigrad module); "{i}" stands for a layer index. The
# parameter name after the module (weight, bias) is carried over.
CHECKPOINT_MODULES = (
    ("embeddings.word_embeddings", "embeddings.word_embeddings"),
    ("embeddings.position_embeddings", "embeddings.position_embeddings"),
    ("embeddings.token_type_embeddings", "embeddings.token_type_embeddings"),
    ("embeddings.LayerNorm", "embeddings.norm"),
    ("encoder.layer.{i}.attention.self.query", "layers.{i}.self_attn.q_proj"),
    ("encoder.layer.{i}.attention.self.key", "layers.{i}.self_attn.k_proj"),
    ("encoder.layer.{i}.attention.self.value", "layers.{i}.self_attn.v_proj"),
    ("encoder.layer.{i}.attention.output.dense", "layers.{i}.self_attn.out_proj"),
    ("encoder.layer.{i}.attention.output.LayerNorm", "layers.{i}.norm1"),
    ("encoder.layer.{i}.intermediate.dense", "layers.{i}.feed_forward.linear1"),
    ("encoder.layer.{i}.output.dense", "layers.{i}.feed_forward.linear2"),
    ("encoder.layer.{i}.output.LayerNorm", "layers.{i}.norm2"),
    ("pooler.dense", "pooler.dense"),
)
# Checkpoint entries that are deliberately not loaded, and why:
#   embeddings.position_ids   a saved buffer holding 0..max_len-1; we slice the table instead
#   cls.*                     pre-training heads (masked LM, next sentence), not part of the encoder
IGNORED_CHECKPOINT_NAMES = (r"embeddings\.position_ids", r"cls\..*")
# Older checkpoints (converted from TensorFlow) call LayerNorm's weight and bias gamma and beta.
_PARAMETER_ALIASES = {"gamma": "weight", "beta": "bias"}
_PREFIX = "bert."


def _template_regex(template):
    return re.compile(re.escape(template).replace(re.escape("{i}"), r"(\d+)") + r"$")


_TO_MINIGRAD = [(_template_regex(source), target) for source, target in CHECKPOINT_MODULES]
_TO_CHECKPOINT = [(_template_regex(target), source) for source, target in CHECKPOINT_MODULES]


def _rename(name, table):
    """Translate one dotted parameter name through `table`; None when no entry fits."""
    module, _, parameter = name.rpartition(".")
    for pattern, replacement in table:
        match = pattern.match(module)
        if match:
            renamed = replacement.replace("{i}", match.group(1)) if match.groups() else replacement
            return f"{renamed}.{parameter}"
    return None


def _strip_prefix(name):
    """BertForPreTraining / BertForMaskedLM checkpoints put the encoder under "bert."."""
    return name[len(_PREFIX):] if name.startswith(_PREFIX) else name


def checkpoint_has_pooler(checkpoint):
    """Whether a checkpoint (name -> value) holds the pooler's weights."""
    return any(_strip_prefix(name).startswith("pooler.") for name in checkpoint)


def checkpoint_to_minigrad_name(name):
    """"encoder.layer.3.attention.self.query.weight" -> "layers.3.self_attn.q_proj.weight",
    "encoder.layer.3.intermediate.dense.bias" -> "layers.3.feed_forward.linear1.bias";
    None for a name with no place in BERT."""
    name = _strip_prefix(name)
    module, _, parameter = name.rpartition(".")
    return _rename(f"{module}.{_PARAMETER_ALIASES.get(parameter, parameter)}", _TO_MINIGRAD)


def minigrad_to_checkpoint_name(name):
    """The inverse of checkpoint_to_minigrad_name (without the "bert." prefix)."""
    return _rename(name, _TO_CHECKPOINT)


def load_bert_checkpoint(model, checkpoint):
    """Copy a Hugging Face BertModel state (name -> Tensor or array) into `model`.

    Each name is translated (CHECKPOINT_MODULES; an optional "bert." prefix and
    gamma/beta are accepted); the weights of Dense layers are transposed from
    PyTorch's (out, in) to Dense's (in, out). Raises one KeyError that lists
    every checkpoint name that has no place in the model (unexpected), every
    model weight that the checkpoint lacks (missing, by its checkpoint name)
    and every shape that does not fit. The names in IGNORED_CHECKPOINT_NAMES
    (and pooler weights, when the model has no pooler) are skipped.
    Returns the list of skipped checkpoint names.
    """
    own = model.state_dict()
    modules = dict(model.named_modules())
    translated, unexpected, ignored, mismatched, misfits = {}, [], [], [], set()
    for name, value in checkpoint.items():
        stripped = _strip_prefix(name)
        if any(re.fullmatch(pattern, stripped) for pattern in IGNORED_CHECKPOINT_NAMES) or (
                stripped.startswith("pooler.") and model.pooler is None):
            ignored.append(name)
            continue
        target = checkpoint_to_minigrad_name(name)
        if target is None or target not in own:
            unexpected.append(name)
            continue
        array = as_array(value)
        module_name, _, parameter = target.rpartition(".")
        if isinstance(modules[module_name], nn.Dense) and parameter == "weight":
            # PyTorch's Linear stores (out, in) and computes x W^T; Dense stores (in, out)
            array = backend.get_array_module(array).ascontiguousarray(array.T)
        if tuple(array.shape) != own[target].shape:
            mismatched.append(f"{name} {tuple(array.shape)} for {target} {own[target].shape}")
            misfits.add(target)
            continue
        translated[target] = array
    missing = [f"{minigrad_to_checkpoint_name(key)} (for {key})" for key in own
               if key not in translated and key not in misfits]
    problems = []
    if unexpected:
        problems.append("unexpected weights (no place in the model): " + ", ".join(unexpected))
    if missing:
        problems.append("missing weights: " + ", ".join(missing))
    if mismatched:
        problems.append("shape mismatches (checkpoint, after transposing Linear weights, vs model): "
                        + "; ".join(mismatched))
    if problems:
        raise KeyError(f"BERT checkpoint does not fit {type(model).__name__}: " + " | ".join(problems))
    model.load_state_dict(translated)
    return ignored
