"""Optimizers and learning-rate schedules.

    opt = optim.Adam(model.parameters(), lr=1e-3)
    for xb, yb in loader:
        loss = F.cross_entropy(model(mg.tensor(xb)), yb)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

Each optimizer follows PyTorch's update equations step for step (written in its
docstring, with g = param.grad and t the step count). Updates change the
parameters' values in place with the array module that holds them (numpy or cupy),
so the Parameter objects a model holds stay the same and a step builds no graph.
One difference from PyTorch: at its first step an optimizer moves the values of
the parameters that step together into one contiguous array and points each
``param.data`` at its piece (see Optimizer.step). An array taken from
``param.data`` before that step, or a state_dict() taken before it, keeps the old
values: take them after the first step, or copy them.

Parameters may be given as a list, or, as in PyTorch, as a list of dicts
("param groups") that override the hyperparameters for some of them:

    optim.SGD([{"params": model.body.parameters()},
               {"params": model.head.parameters(), "lr": 1e-2}], lr=1e-3)

state_dict() is flat, {name: Tensor}, so mg.save writes it as safetensors:
    "state.<i>.<buffer>"          per-parameter state (i counts parameters over the groups)
    "state.<i>.step"              that parameter's step count (0-d int64)
    "param_groups.<g>.<setting>"  each group's hyperparameters (float64 / bool arrays)
    "param_groups.<g>.params"     the indices i of the group's parameters

Hyperparameters are checked when an optimizer is made (and when a checkpoint
loads them), as PyTorch checks them: lr >= 0, momentum >= 0, 0 <= beta < 1,
eps > 0, weight_decay >= 0, all finite real numbers. A bad value fails there,
naming the setting, not several steps later as NaN weights.
"""
import itertools
import math
import numbers
from collections.abc import Mapping

from . import backend
from .backend import kernels
from .tensor import Tensor

__all__ = ["Optimizer", "GD", "SGD", "Adam", "AdamW", "clip_grad_norm_",
           "LRScheduler", "LambdaLR", "NoamScheduler", "WarmupCosine"]


def _host_value(value):
    """A Tensor, array or number as a host numpy array (for state_dict entries)."""
    return backend.to_numpy(value.data if isinstance(value, Tensor) else value)


def _host_array(value, dtype):
    """A Python number, bool or tuple as a host array: mg.save needs arrays."""
    return Tensor(backend.numpy.asarray(value, dtype=dtype))


def _real_number(name, setting, value):
    """value as a float if it is a finite real number (a bool is not one), else a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {setting} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: {setting} must be finite, got {value}")
    return value


def check_settings(name, group):
    """Raise if a param group's hyperparameters are outside what its update rule allows.

    Each rule is the one PyTorch enforces, and each guards the math: a beta of 1
    divides by 1 - beta^t = 0 in Adam's bias correction, eps = 0 divides by
    sqrt(v) = 0 wherever a gradient is zero, and a negative lr climbs the loss.
    """
    lower_bounds = {"lr": 0.0, "momentum": 0.0, "weight_decay": 0.0, "dampening": 0.0}
    for setting, lowest in lower_bounds.items():
        if setting in group and _real_number(name, setting, group[setting]) < lowest:
            raise ValueError(f"{name}: {setting} must be >= {lowest:g}, got {group[setting]}")
    if "eps" in group and not _real_number(name, "eps", group["eps"]) > 0:
        raise ValueError(f"{name}: eps must be > 0, got {group['eps']}")
    if "betas" in group:
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got "
                            f"{type(betas).__name__} {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= _real_number(name, f"betas[{i}]", beta) < 1.0:
                raise ValueError(f"{name}: betas[{i}] must be in [0, 1), got {beta}")
    if "nesterov" in group:
        if not isinstance(group["nesterov"], bool):
            raise TypeError(f"{name}: nesterov must be True or False, got {group['nesterov']!r}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{name}: nesterov momentum needs momentum > 0 and dampening = 0, "
                             f"got momentum {group['momentum']} and dampening {group['dampening']}")


def _like(old, stored, key, name):
    """A stored hyperparameter (an array from a checkpoint) as the Python type of `old`."""
    array = _host_value(stored)
    size = len(old) if isinstance(old, tuple) else 1
    if array.size != size or array.dtype.kind not in "biuf":
        raise ValueError(f"{name}: {key} should hold {size} real number(s), "
                         f"got {array.dtype} of shape {array.shape}")
    if isinstance(old, bool):
        return bool(array)
    if isinstance(old, tuple):
        return tuple(float(v) for v in array.reshape(-1))
    return float(array)


class Optimizer:
    """Base class: holds the param groups and per-parameter state.

    Subclasses define update_arrays(data, grad, state, step, group), the update on
    arrays in place; step() calls it once for the parameters that step together (on
    their flat arrays) or once per parameter.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}                       # Parameter -> {"step": int, buffer name: array}
        self._flats = {}                      # (group, parameter ids) -> FlatParams (see step)
        name = type(self).__name__
        if callable(getattr(params, "parameters", None)):
            raise TypeError(f"{name}: expected an iterable of parameters, got the module "
                            f"{type(params).__name__}; pass model.parameters()")
        if isinstance(params, Tensor) or not hasattr(params, "__iter__"):
            raise TypeError(f"{name}: expected an iterable of parameters or of param-group dicts, "
                            f"got {type(params).__name__}")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty list of parameters")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add {"params": [...], setting: value, ...}; missing settings take the defaults."""
        if not isinstance(group, Mapping) or "params" not in group:
            raise TypeError(f"{type(self).__name__}: a param group must be a dict with a 'params' entry, "
                            f"got {type(group).__name__}")
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for param in group["params"]:
            if not isinstance(param, Tensor) or not param.requires_grad:
                raise TypeError(f"{type(self).__name__}: can only optimize tensors that require grad, "
                                f"got {type(param).__name__}")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown settings {sorted(unknown)} in a param group; "
                             f"known: {sorted(self.defaults)}")
        known = {id(p) for other in self.param_groups for p in other["params"]}
        if any(id(p) in known for p in group["params"]):
            raise ValueError(f"{type(self).__name__}: a parameter appears in more than one param group")
        if len({id(p) for p in group["params"]}) != len(group["params"]):
            # each listing would be updated once per step, so the parameter would move twice
            raise ValueError(f"{type(self).__name__}: a parameter is listed twice in one param group")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        check_settings(type(self).__name__, group)
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Forget every gradient (or zero it in place when set_to_none=False)."""
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none or param.grad is None:
                    param.grad = None
                else:
                    param.grad.data[...] = 0

    def step(self):
        """One update of every parameter that has a gradient (the others are skipped).

        The parameters of a group that step together (same device, dtype and step
        count) are updated by ONE kernel call on flat arrays: their data and state
        live as views into one contiguous array each (made at the first step, and
        again whenever something replaced a parameter's data or state, e.g.
        load_state_dict or .to(device)), and their gradients are copied into one flat
        array in a single call. PyTorch's "foreach" idea: on a GPT step this turned
        340 small updates of ~10 array calls each into ~10 calls in all."""
        for index, group in enumerate(self.param_groups):
            kinds = {}          # parameters that step together: same device, dtype and step count
            for param in group["params"]:
                if param.grad is not None:
                    state = self.state.setdefault(param, {"step": 0})
                    kinds.setdefault((param.device, param.dtype, state["step"]), []).append(param)
            for params in kinds.values():
                states = [self.state[p] for p in params]
                for state in states:
                    state["step"] += 1
                flat = self._flat_params(index, params, states, group)
                if flat is not None:
                    self.update_arrays(flat.data, flat.gather_grads(), flat.state, states[0]["step"], group)
                    flat.share_state()
                else:
                    for param, state in zip(params, states):
                        self.update_arrays(param.data, param.grad.data, state, state["step"], group)
                for param in params:
                    param._version += 1  # in place: a graph that saved param must not reuse it

    def _flat_params(self, index, params, states, group):
        """The FlatParams that holds `params`, made or remade as needed; None where a
        flat update cannot stand for the per-parameter ones (a single parameter, step
        counts that differ, state buffers that some have and some lack)."""
        steps = {state["step"] for state in states}
        buffers = [frozenset(k for k in state if k != "step") for state in states]
        if len(params) < 2 or len(steps) > 1 or len(set(buffers)) > 1:
            return None
        key = (index, tuple(id(p) for p in params))
        flat = self._flats.get(key)
        if flat is None or not flat.holds(params, states):
            # a parameter lives in one flat array at a time: the copies it was in before go
            members = set(key[1])
            for stale in [k for k in self._flats if k[0] == index and members.intersection(k[1])]:
                del self._flats[stale]
            flat = self._flats[key] = FlatParams(params, states)
        return flat

    def update_arrays(self, data, grad, state, step, group):
        """Update data in place from grad; state holds the buffers by name (one
        parameter's, or the flat arrays of several); step is t after this update."""
        raise NotImplementedError

    # ---- checkpoints
    def state_dict(self):
        """Flat {name: Tensor} (see the module docstring), ready for mg.save.
        State buffers are the live arrays, not copies: save them before stepping on."""
        flat, index = {}, 0
        for g, group in enumerate(self.param_groups):
            for key, value in group.items():
                if key != "params":
                    flat[f"param_groups.{g}.{key}"] = _host_array(
                        value, bool if isinstance(value, bool) else "float64")
            flat[f"param_groups.{g}.params"] = _host_array(
                range(index, index + len(group["params"])), "int64")
            for param in group["params"]:
                for key, value in self.state.get(param, {}).items():
                    flat[f"state.{index}.{key}"] = (_host_array(value, "int64") if key == "step"
                                                    else Tensor(value))
                index += 1
        return flat

    def state_buffers(self, group):
        """The names of the arrays a parameter of `group` keeps once it has stepped
        (besides its "step" count); load_state_dict expects exactly these."""
        return ()

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and per-parameter state saved by state_dict() (or read
        back with mg.load). Buffers are copied onto each parameter's device and dtype.
        The optimizer must have been made with the same groups of the same sizes.

        Everything is checked before anything changes: every setting of every group
        must be there (and pass the constructor's checks), and a parameter's state is
        either absent (it never stepped) or its step count with exactly the buffers
        this optimizer keeps. A rejected checkpoint changes nothing."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{name}: expected a dict of name -> Tensor (from state_dict() or mg.load), "
                            f"got {type(state_dict).__name__}")
        saved_groups, saved_states = {}, {}
        for key, value in state_dict.items():
            parts = key.split(".", 2) if isinstance(key, str) else []
            if len(parts) != 3 or parts[0] not in ("param_groups", "state") or not parts[1].isdigit():
                raise KeyError(f"{name}: unexpected key {key!r}")
            if not (isinstance(value, Tensor) or backend.is_array(value)):
                raise TypeError(f"{name}: {key} must be a Tensor or an array, got {type(value).__name__}")
            table = saved_groups if parts[0] == "param_groups" else saved_states
            table.setdefault(int(parts[1]), {})[parts[2]] = value

        sizes = [len(group["params"]) for group in self.param_groups]
        saved_sizes = [len(_host_value(fields["params"]).reshape(-1)) if "params" in fields else None
                       for _, fields in sorted(saved_groups.items())]
        if sorted(saved_groups) != list(range(len(sizes))) or saved_sizes != sizes:
            raise ValueError(f"{name}: the checkpoint's param groups (sizes {saved_sizes}) do not match "
                             f"this optimizer's, which has groups of sizes {sizes}")
        settings = []
        for position, group in enumerate(self.param_groups):
            fields = saved_groups[position]
            unknown = sorted(set(fields) - set(group))
            if unknown:
                raise KeyError(f"{name}: unknown setting {unknown[0]!r} in param group {position}")
            missing = sorted(set(group) - set(fields))
            if missing:
                raise KeyError(f"{name}: param group {position} lacks the setting(s) {missing}")
            loaded = {field: _like(group[field], value, f"param_groups.{position}.{field}", name)
                      for field, value in fields.items() if field != "params"}
            check_settings(name, {**group, **loaded})
            settings.append(loaded)

        owners = [(param, {**group, **loaded})
                  for group, loaded in zip(self.param_groups, settings) for param in group["params"]]
        new_state = {}
        for position, fields in sorted(saved_states.items()):
            if position >= len(owners):
                raise ValueError(f"{name}: the checkpoint has state for parameter {position}, "
                                 f"but this optimizer has {len(owners)} parameters")
            param, group = owners[position]
            expected = {"step", *self.state_buffers(group)}
            if set(fields) != expected:
                raise KeyError(f"{name}: state.{position} should hold {sorted(expected)}, got {sorted(fields)}"
                               f" (missing {sorted(expected - set(fields))}, extra {sorted(set(fields) - expected)})")
            step = _host_value(fields.pop("step"))
            if step.size != 1 or step.dtype.kind not in "iu" or int(step) < 0:
                raise ValueError(f"{name}: state.{position}.step should be one non-negative integer, "
                                 f"got {step.dtype} of shape {step.shape}")
            slot = new_state[param] = {"step": int(step)}
            for field, value in fields.items():
                data = backend.to_device(value.data if isinstance(value, Tensor) else value, param.device)
                if data.dtype.kind not in "fiu" or tuple(data.shape) != param.shape:
                    raise ValueError(f"{name}: state.{position}.{field} should be a real array of its "
                                     f"parameter's shape {param.shape}, got {data.dtype} {tuple(data.shape)}")
                slot[field] = data.astype(param.dtype, copy=True)
        for group, loaded in zip(self.param_groups, settings):
            group.update(loaded)
        self.state = new_state

    def __repr__(self):
        settings = ", ".join(f"{key}={value}" for key, value in self.param_groups[0].items() if key != "params")
        return f"{type(self).__name__}({settings})"


class GD(Optimizer):
    """Plain (full-batch) gradient descent:  w <- w - lr * g."""

    def __init__(self, params, lr):
        super().__init__(params, dict(lr=lr))

    def update_arrays(self, data, grad, state, step, group):
        kernels.optimizers.sgd_update(data, grad, None, group["lr"], 0.0, 0.0, False, 0.0, False)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as torch.optim.SGD:

        g <- g + weight_decay * w                            (L2 penalty)
        b <- g                               at t = 1,   with momentum != 0
        b <- momentum * b + (1 - dampening) * g   at t > 1
        g <- g + momentum * b  if nesterov,  else  g <- b
        w <- w - lr * g
    """

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov,
                                      weight_decay=weight_decay, dampening=dampening))

    def state_buffers(self, group):
        return ("momentum_buffer",) if group["momentum"] else ()

    def update_arrays(self, data, grad, state, step, group):
        buffer, first = None, False
        if group["momentum"]:
            first = "momentum_buffer" not in state
            if first:
                state["momentum_buffer"] = backend.get_array_module(data).empty_like(data)
            buffer = state["momentum_buffer"]
        kernels.optimizers.sgd_update(data, grad, buffer, group["lr"], group["momentum"], group["dampening"],
                                      group["nesterov"], group["weight_decay"], first)


class Adam(Optimizer):
    """Adam (Kingma and Ba), as torch.optim.Adam:

        g <- g + weight_decay * w                      (L2 penalty, coupled to the gradient)
        m <- b1 * m + (1 - b1) * g                     first moment,  m = 0 at t = 0
        v <- b2 * v + (1 - b2) * g^2                   second moment, v = 0 at t = 0
        m_hat = m / (1 - b1^t),   v_hat = v / (1 - b2^t)   (bias correction)
        w <- w - lr * m_hat / (sqrt(v_hat) + eps)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def state_buffers(self, group):
        return ("exp_avg", "exp_avg_sq")

    decoupled_weight_decay = False

    def update_arrays(self, data, grad, state, step, group):
        if "exp_avg" not in state:
            xp = backend.get_array_module(data)
            state["exp_avg"], state["exp_avg_sq"] = xp.zeros_like(data), xp.zeros_like(data)
        beta1, beta2 = group["betas"]
        kernels.optimizers.adam_update(data, grad, state["exp_avg"], state["exp_avg_sq"], step, group["lr"],
                                       beta1, beta2, group["eps"], group["weight_decay"],
                                       self.decoupled_weight_decay)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter), as torch.optim.AdamW:

        w <- w - lr * weight_decay * w                 (decay first, not through g)
        then the Adam update above with weight_decay = 0.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    decoupled_weight_decay = True


class FlatParams:
    """Parameters of one kind (device, dtype) and their state buffers as views into one
    contiguous array each, so that one kernel call updates them all.

    data: the flat array whose pieces are the parameters' .data (each param.data is
    re-pointed at its piece, so the model sees every update); state: name -> flat array
    whose pieces are each parameter's state[name] (so state_dict() is unchanged);
    gather_grads() copies the gradients into one flat array in one call. Made from
    the current values: nothing changes when the flat copy is (re)made.
    """

    def __init__(self, params, states):
        xp = backend.get_array_module(params[0].data)
        self.params, self.states = list(params), list(states)
        self.shapes = [p.shape for p in params]
        ends = list(itertools.accumulate(int(p.data.size) for p in params))
        self.bounds = list(zip([0] + ends[:-1], ends))
        self.data = kernels.optimizers.gather([p.data for p in params], xp.empty(ends[-1], params[0].dtype))
        self.grad = xp.empty_like(self.data)
        self.data_views = self.views(self.data)
        for param, view in zip(params, self.data_views):
            param.data = view
        self.state, self.state_views = {}, {}
        for name in [k for k in states[0] if k != "step"]:
            self.state[name] = kernels.optimizers.gather([s[name] for s in states], xp.empty_like(self.data))
        self.share_state()

    def views(self, flat):
        return [flat[lo:hi].reshape(shape) for (lo, hi), shape in zip(self.bounds, self.shapes)]

    def share_state(self):
        """Hand each parameter its pieces of the flat state arrays (also those an update
        has just created, at a first step)."""
        for name, flat in self.state.items():
            if name not in self.state_views:
                self.state_views[name] = self.views(flat)
                for state, view in zip(self.states, self.state_views[name]):
                    state[name] = view

    def holds(self, params, states):
        """True while every parameter's data and state buffers are still our views."""
        if any(param.data is not view for param, view in zip(params, self.data_views)):
            return False
        for position, state in enumerate(states):
            if state is not self.states[position] or len(state) - 1 != len(self.state_views):
                return False
            if any(state.get(name) is not views[position] for name, views in self.state_views.items()):
                return False
        return True

    def gather_grads(self):
        return kernels.optimizers.gather([p.grad.data for p in self.params], self.grad)


def clip_grad_norm_(params, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their joint norm is at most max_norm.

        total = (sum over every element of every grad of |g|^p)^(1/p)   (p = norm_type, or inf: max |g|)
        if total > max_norm:  g <- g * max_norm / (total + 1e-6)     for every g
    Returns the total norm before clipping, as a Python float (PyTorch returns a
    0-d tensor); 0.0 when every gradient is zero or none is there. Parameters
    without a gradient are skipped.

    A non-finite total (a NaN or inf in some gradient) is an error when
    error_if_nonfinite=True. Otherwise, as in PyTorch, the gradients are still
    scaled: by NaN when the total is NaN, by 0 when it is inf (so an inf
    gradient becomes NaN), which the next step passes on to the weights.
    """
    grads = [p.grad for p in ([params] if isinstance(params, Tensor) else params) if p.grad is not None]
    if not grads:
        return 0.0
    per_device = {}                           # one host sync per device, not per parameter
    for grad in grads:
        xp = backend.get_array_module(grad.data)
        if norm_type == math.inf:
            part = xp.abs(grad.data).max()
        elif norm_type == 2:
            part = (grad.data * grad.data).sum()
        else:
            part = (xp.abs(grad.data) ** norm_type).sum()
        previous = per_device.get(grad.device)
        per_device[grad.device] = part if previous is None else (
            xp.maximum(previous, part) if norm_type == math.inf else previous + part)
    parts = [float(part) for part in per_device.values()]
    total = max(parts) if norm_type == math.inf else sum(parts) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                           f"{total}, so they cannot be clipped; pass error_if_nonfinite=False to scale "
                           f"them anyway (as PyTorch does)")
    coefficient = max_norm / (total + 1e-6)
    if not coefficient >= 1.0:                # true for NaN too: PyTorch's clamp(max=1) keeps a NaN
        for grad in grads:
            # a new array rather than *=, in case backward handed one array to two places
            grad.data = grad.data * grad.data.dtype.type(coefficient)
    return total


# --------------------------------------------------------------------------- schedules
class LRScheduler:
    """Base class: sets every param group's lr from the number of scheduler steps taken.

    Call scheduler.step() after optimizer.step(). `last_step` counts those calls
    (0 right after construction, when the lr for the first update is already set).
    Subclasses define lr_at(last_step, base_lr).
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_step = 0
        self._apply()

    def lr_at(self, step, base_lr):
        raise NotImplementedError

    def _apply(self):
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_step, base_lr)

    def step(self):
        self.last_step += 1
        self._apply()

    def get_last_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """{"last_step": 0-d int64, "base_lrs": float64 (groups,)}: arrays, for mg.save."""
        return {"last_step": _host_array(self.last_step, "int64"),
                "base_lrs": _host_array(self.base_lrs, "float64")}

    def load_state_dict(self, state_dict):
        self.last_step = int(_host_value(state_dict["last_step"]))
        self.base_lrs = [float(lr) for lr in _host_value(state_dict["base_lrs"]).reshape(-1)]
        self._apply()


class LambdaLR(LRScheduler):
    """lr = base_lr * fn(last_step), as torch.optim.lr_scheduler.LambdaLR."""

    def __init__(self, optimizer, fn):
        self.fn = fn
        super().__init__(optimizer)

    def lr_at(self, step, base_lr):
        return base_lr * self.fn(step)


class NoamScheduler(LRScheduler):
    """The warm-up schedule of "Attention Is All You Need" (section 5.3):

        lr(s) = factor * d_model^-0.5 * min(s^-0.5, s * warmup^-1.5)

    with s = last_step + 1 the number of the update about to be made (1, 2, ...):
    a linear rise for `warmup` steps, then decay as 1/sqrt(s); the peak, at
    s = warmup, is factor / sqrt(d_model * warmup). The optimizer's own lr is
    overwritten (the paper uses Adam with betas (0.9, 0.98), eps 1e-9).
    """

    def __init__(self, optimizer, d_model, warmup, factor=1.0):
        if warmup < 1:
            raise ValueError(f"NoamScheduler: warmup must be at least 1, got {warmup}")
        self.d_model, self.warmup, self.factor = d_model, warmup, factor
        super().__init__(optimizer)

    def lr_at(self, step, base_lr):
        s = step + 1
        return self.factor * self.d_model ** -0.5 * min(s ** -0.5, s * self.warmup ** -1.5)


class WarmupCosine(LRScheduler):
    """Linear warm-up, then cosine decay to min_lr, with s = last_step + 1 (1, 2, ...):

        s <= warmup:              lr = base_lr * s / warmup
        warmup < s <= total:      lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * (s - warmup) / (total - warmup))) / 2
        s > total_steps:          lr = min_lr
    base_lr is the optimizer's lr when the scheduler is made.
    """

    def __init__(self, optimizer, warmup, total_steps, min_lr=0.0):
        if not 0 <= warmup <= total_steps:
            raise ValueError(f"WarmupCosine: need 0 <= warmup <= total_steps, got {warmup} and {total_steps}")
        self.warmup, self.total_steps, self.min_lr = warmup, total_steps, min_lr
        super().__init__(optimizer)

    def lr_at(self, step, base_lr):
        s = step + 1
        if s <= self.warmup:
            return base_lr * s / self.warmup
        if s > self.total_steps:
            return self.min_lr
        progress = (s - self.warmup) / (self.total_steps - self.warmup)
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
