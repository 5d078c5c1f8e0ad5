"""nn.Module: the container that holds parameters, buffers and submodules.

Assigning a Parameter or a Module to an attribute registers it, so
``parameters()`` finds every weight in the tree and ``state_dict()`` names each
one with a dotted path such as ``layers.0.weight``:

    class TwoLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Dense(2, 8)          # a submodule, registered as "hidden"
            self.out = nn.Dense(8, 1)
            self.register_buffer("scale", mg.ones(1))   # state that is not learned

        def forward(self, x):
            return self.out(self.hidden(x).relu()) * self.scale

    [name for name, _ in TwoLayer().named_parameters()]
    # ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']

Buffers, as in PyTorch, are declared once with register_buffer; assigning a
Tensor to that name later replaces the buffer. A plain Tensor assigned to any
other attribute is an ordinary attribute (a cached mask, say), not state.

Hooks let code outside a module watch or change what flows through it without
editing its forward (mg.viz reads attention weights this way):

    handle = model.blocks[0].register_forward_hook(
        lambda module, args, output: print(type(module).__name__, output.shape))
    model(ids)            # prints as blocks[0] runs
    handle.remove()
"""
import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from types import MappingProxyType

from .. import backend
from ..tensor import Tensor


def _checkpoint_value(key, value, target):
    """A checkpoint's value for `target` (a parameter or buffer), as an array already on
    its device and of its dtype, ready to copy; ValueError naming the key otherwise.
    Only real numbers (floats, integers, bools) load: None, strings or complex numbers
    would become NaN, fail halfway through the copy, or lose their imaginary part."""
    is_array = isinstance(value, Tensor) or backend.is_array(value)
    try:
        data = value.data if isinstance(value, Tensor) else value if is_array else backend.to_numpy(value)
    except (ValueError, TypeError) as error:           # a ragged list, say
        raise ValueError(f"bad value for {key}: cannot make an array of the {type(value).__name__} "
                         f"given ({error})") from None
    if data.dtype.kind not in "biuf":
        shown = f"an array of dtype {data.dtype}" if is_array else f"{value!r} (a {type(value).__name__})"
        raise ValueError(f"bad value for {key}: expected real numbers (float, int or bool), got {shown}")
    if tuple(data.shape) != target.shape:
        raise ValueError(f"size mismatch for {key}: checkpoint has shape {tuple(data.shape)}, "
                         f"the model has {target.shape}")
    return backend.to_device(data, target.device).astype(target.dtype, copy=False)


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable weight (requires_grad=True)."""

    def __init__(self, data, requires_grad=True, dtype=None, device=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, device=device)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class RemovableHandle:
    """Returned by register_forward_hook / register_forward_pre_hook: remove() takes
    the hook off its module (a second remove() does nothing)."""

    _ids = itertools.count()

    def __init__(self, hooks):
        self.hooks, self.id = hooks, next(RemovableHandle._ids)

    def remove(self):
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


class Module:
    """Base class of every layer and model.

    Subclasses call super().__init__() first, set attributes, and define
    forward(); calling the module calls forward. ``training`` is True after
    construction and after train(), False after eval(); dropout reads it.
    """

    # Class defaults, shadowed by a per-instance dict at the first register_*_hook:
    # a module without hooks pays one falsy attribute read per table in __call__.
    _forward_pre_hooks = _forward_hooks = MappingProxyType({})
    # Old names of entries below this module -> their names now, {"linear1":
    # "feed_forward.linear1"}: load_state_dict accepts a state dict saved under the old
    # names (or PyTorch's) and state_dict() writes the new ones.
    state_dict_aliases = {}

    def __init__(self):
        # written through __dict__ because __setattr__ below needs these tables
        self.__dict__.update(_parameters=OrderedDict(), _modules=OrderedDict(),
                             _buffers=OrderedDict(), _non_persistent=set(), training=True)

    # ---- registration by assignment
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning "
                                 f"attribute {name!r}")
        parameters, modules, buffers = self._parameters, self._modules, self._buffers
        if isinstance(value, Parameter):
            self._put(parameters, name, value)
        elif isinstance(value, Module):
            self._put(modules, name, value)
        else:
            for table, kind, expected in ((parameters, "parameter", "nn.Parameter"),
                                          (modules, "submodule", "nn.Module"), (buffers, "buffer", "Tensor")):
                if name in table:
                    if value is not None and not (table is buffers and isinstance(value, Tensor)):
                        raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} to "
                                        f"{kind} {name!r} (expected {expected} or None)")
                    table[name] = value
        # also a plain attribute, so that reading self.weight costs no __getattr__ lookup
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._put(None, name, None)
        object.__delattr__(self, name)

    def _put(self, table, name, value):
        """Register value under name in table (None: in no table), dropping the name from
        the other tables; a name that stays in its table keeps its place in the order."""
        for other in (self._parameters, self._modules, self._buffers):
            if other is not table:
                other.pop(name, None)
        if table is not None:
            table[name] = value
        if table is not self._buffers:
            self._non_persistent.discard(name)

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is state but not learned (running means, a positional table).
        It is moved by to() and, when persistent, saved in state_dict; parameters()
        does not return it."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{type(self).__name__}.register_buffer: bad name {name!r} (a non-empty str without '.')")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"{type(self).__name__}.register_buffer: {name!r} must be a Tensor or None, "
                            f"got {type(tensor).__name__}")
        self._put(self._buffers, name, tensor)
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name, parameter):
        if parameter is not None and not isinstance(parameter, Parameter):
            raise TypeError(f"{type(self).__name__}.register_parameter: {name!r} must be an nn.Parameter "
                            f"or None, got {type(parameter).__name__}")
        self._put(self._parameters, name, parameter)
        object.__setattr__(self, name, parameter)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add_module: {name!r} must be an nn.Module, "
                            f"got {type(module).__name__}")
        self._put(self._modules, name, module)
        object.__setattr__(self, name, module)

    # ---- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks or self._forward_hooks:
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args, kwargs):
        """pre-hooks (may replace args, kwargs), forward, forward hooks (may replace the
        output), each table in registration order; a hook added or removed while this
        call runs takes effect from the next call."""
        for hook, with_kwargs in list(self._forward_pre_hooks.values()):
            if with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"{type(self).__name__}: a forward pre-hook with with_kwargs=True "
                                           f"must return None or (args, kwargs), got {type(result).__name__}")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook, with_kwargs in list(self._forward_hooks.values()):
            result = hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
            if result is not None:
                output = result
        return output

    def _add_hook(self, table_name, hook, with_kwargs):
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.register_{table_name[1:-1]}: expected a callable, "
                            f"got {type(hook).__name__}")
        table = self.__dict__.get(table_name)
        if table is None:                   # the first hook of its kind: a table of this module's own
            table = self.__dict__[table_name] = OrderedDict()
        handle = RemovableHandle(table)
        table[handle.id] = (hook, bool(with_kwargs))
        return handle

    def register_forward_pre_hook(self, hook, *, with_kwargs=False):
        """Call hook(module, args) before every forward; args is the tuple of positional
        arguments. It returns None (keep them) or new args: a tuple, or a single value
        that becomes a 1-tuple. with_kwargs=True: hook(module, args, kwargs) returns None
        or a pair (args, kwargs). Returns a handle whose remove() takes the hook off."""
        return self._add_hook("_forward_pre_hooks", hook, with_kwargs)

    def register_forward_hook(self, hook, *, with_kwargs=False):
        """Call hook(module, args, output) after every forward (args: the positional
        arguments forward received, after any pre-hook); a return value other than None
        replaces the output. with_kwargs=True: hook(module, args, kwargs, output).
        Hooks run in the order they were registered, each seeing the output the previous
        one returned. Returns a handle whose remove() takes the hook off."""
        return self._add_hook("_forward_hooks", hook, with_kwargs)

    # ---- walking the tree
    def children(self):
        """The direct submodules, in the order they were assigned."""
        return (module for _, module in self.named_children())

    def named_children(self):
        return ((name, module) for name, module in self._modules.items() if module is not None)

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every module below it, depth first,
        each module once even if it is reachable by two paths."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            # reversed, so that popping from the end visits children in assignment order
            stack.extend((_join(name, child_name), child)
                         for child_name, child in reversed(list(module.named_children())))

    def modules(self):
        return (module for _, module in self.named_modules())

    def _named_members(self, table, prefix, recurse):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, tensor in getattr(module, table).items():
                if tensor is not None and id(tensor) not in seen:
                    seen.add(id(tensor))
                    yield _join(module_prefix, name), tensor

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, Parameter) pairs; a parameter shared by two modules appears once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        """Every Parameter in the tree, as a list (an optimizer takes it directly)."""
        return [param for _, param in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        return [buffer for _, buffer in self.named_buffers(recurse=recurse)]

    def num_parameters(self):
        """How many numbers the model learns (shared parameters counted once)."""
        return sum(param.size for param in self.parameters())

    # ---- modes and gradients
    def train(self, mode=True):
        """Set training mode on this module and every submodule; returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (dropout off): train(False)."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (or fill it with zeros when set_to_none=False)."""
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad.data[...] = 0

    def requires_grad_(self, flag=True):
        for param in self.parameters():
            param.requires_grad_(flag)
        return self

    def apply(self, fn):
        """Call fn on every submodule, children before parents, then on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- devices and dtypes
    def to(self, device=None, dtype=None):
        """Move and/or cast every parameter and buffer (and gradient) in place; returns self.

        module.to("cuda"), module.to("cpu"), module.to(dtype="float64"), or, as in
        PyTorch, module.to("float64"). Only floating-point tensors change dtype.
        The Parameter objects stay the same, so an optimizer made before keeps working.
        """
        if dtype is None and device is not None and not str(device).lower().startswith(backend.DEVICES):
            device, dtype = None, device                         # module.to("float64")
        device = backend.check_device(device) if device is not None else None
        dtype = backend.as_dtype(dtype)

        def convert(array):
            if device is not None:
                array = backend.to_device(array, device)
            if dtype is not None and array.dtype.kind == "f":
                array = array.astype(dtype, copy=False)
            return array

        for module in self.modules():
            for table in (module._parameters, module._buffers):
                for tensor in table.values():
                    if tensor is None:
                        continue
                    tensor.data = convert(tensor.data)
                    if tensor.grad is not None:
                        tensor.grad.data = convert(tensor.grad.data)
        return self

    def cuda(self):
        return self.to("cuda")

    def cpu(self):
        return self.to("cpu")

    def double(self):
        return self.to(dtype="float64")

    def float(self):
        return self.to(dtype="float32")

    # ---- saving and loading
    def state_dict(self, prefix=""):
        """name -> Tensor for every parameter and persistent buffer.

        The Tensors are detached and share memory with the module (as in PyTorch),
        so save them before training on: mg.save(model.state_dict(), path). (An
        optimizer's first step moves the parameters into its flat arrays, see optim.py:
        a state_dict() taken before that step no longer follows them.)
        A parameter shared by two modules appears under both names.
        """
        return OrderedDict((name, Tensor(tensor.data)) for name, tensor in self._state_targets(prefix).items())

    def _state_targets(self, prefix=""):
        """name -> the live Parameter or buffer that state_dict() names so."""
        targets = OrderedDict()
        for module_prefix, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is not None:
                    targets[_join(module_prefix, name)] = param
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    targets[_join(module_prefix, name)] = buffer
        return targets

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into the parameters and buffers of the same names, in place.

        Values may be Tensors or arrays on any device; they are copied to each
        target's device and cast to its dtype. With strict=True, missing keys,
        unexpected keys, shape mismatches and values that are not real numbers
        (None, strings, complex numbers, objects) raise one RuntimeError that names
        them all; with strict=False the matching keys are loaded and
        IncompatibleKeys(missing_keys, unexpected_keys) is returned (a bad value or
        shape still raises, as in PyTorch). Every value is checked and cast before
        the first one is copied, so nothing is copied if anything raises.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{type(self).__name__}.load_state_dict: expected a dict of name -> Tensor "
                            f"(from state_dict() or mg.load), got {type(state_dict).__name__}")
        targets = self._state_targets()
        state_dict = self._resolve_aliases(state_dict, targets)
        missing = [key for key in targets if key not in state_dict]
        unexpected = [key for key in state_dict if key not in targets]
        values, bad_values = {}, []
        for key, target in targets.items():
            if key in state_dict:
                try:
                    values[key] = _checkpoint_value(key, state_dict[key], target)
                except ValueError as problem:
                    bad_values.append(str(problem))
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(repr(key) for key in missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(repr(key) for key in unexpected))
        problems += bad_values
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(problems))
        for key, data in values.items():
            targets[key].data[...] = data        # in place: views of the old state_dict stay live
            targets[key]._version += 1
        return IncompatibleKeys(missing, unexpected)

    def _resolve_aliases(self, state_dict, targets):
        """state_dict with each key that the model lacks but that a module's
        state_dict_aliases renames into one it has, renamed ("layers.0.linear1.weight" ->
        "layers.0.feed_forward.linear1.weight"); other keys unchanged, order kept."""
        renames = [(_join(prefix, old) + ".", _join(prefix, new) + ".")
                   for prefix, module in self.named_modules() for old, new in module.state_dict_aliases.items()]
        if not renames:
            return state_dict
        resolved = OrderedDict()
        for key, value in state_dict.items():
            if key not in targets:
                for old, new in renames:
                    if key.startswith(old) and new + key[len(old):] in targets:
                        key = new + key[len(old):]
                        break
            resolved[key] = value
        return resolved

    # ---- printing
    def extra_repr(self):
        """The module's own settings, shown inside its parentheses in repr()."""
        return ""

    def __repr__(self):
        """The tree as PyTorch prints it:
            Sequential(
              (0): Dense(n_in=2, n_out=3, bias=True)
              (1): ReLU()
            )"""
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        lines += [f"({name}): " + repr(module).replace("\n", "\n  ") for name, module in self._modules.items()]
        head = type(self).__name__ + "("
        if not self._modules and len(lines) == 1:
            return head + lines[0] + ")"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied one after the other: y = m_n(...m_2(m_1(x))).

    Sequential(m1, m2, ...) names them "0", "1", ...; Sequential(OrderedDict(name=m))
    keeps the given names.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class ModuleList(Module):
    """A list of modules whose parameters are registered (named "0", "1", "2", ...).
    It has no forward: the owner decides how to call its entries."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def _index(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"ModuleList: index {index} out of range for length {len(self)}")
        return str(index % len(self))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[self._index(index)]

    def __setitem__(self, index, module):
        self.add_module(self._index(index), module)    # an existing name keeps its place

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
