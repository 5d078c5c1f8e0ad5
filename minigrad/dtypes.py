"""Type promotion: the dtype of an op's result when its inputs' dtypes differ.

minigrad follows PyTorch, whose rules differ from numpy's in ways that matter for
models (numpy would turn int64 / float32 data into float64, and float16 times a
0-d float32 into float32). Dtypes fall into categories, from low to high:

    bool  <  integer (uint8, int32, int64, ...)  <  floating  <  complex

1. Tensors of one category meet at the wider dtype (float16 + float32 -> float32,
   uint8 + int8 -> int16). Across categories the higher category's dtype wins
   whatever its width: int64 + float16 -> float16 (numpy: float64).
2. A 0-d tensor only counts when it raises the category: float16 (n,) * 0-d float32
   -> float16, but int32 (n,) * 0-d float64 -> float64.
3. A Python number never widens a tensor: it takes the tensors' dtype unless its
   category is higher, and then the default dtype of its own category
   (int32 * 2 -> int32, float16 + 0.5 -> float16, int32 * 0.5 -> float32,
   bool + 1 -> int64). numpy scalars count as numbers (x * np.sqrt(2) keeps x's dtype).
4. Ops whose values are real numbers (/, exp, sqrt, mean, ...) make integer and
   bool inputs float32 first (see Function.float_valued in autograd.py).

The dispatch (as_tensors in tensor.py and Function.__call__ in autograd.py) applies
these rules once for every op; the ops themselves only ever see one dtype.
"""
from . import backend

numpy = backend.numpy

CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
# the dtype a Python number of each category becomes when nothing decides otherwise
_NUMBER_DEFAULT = {0: numpy.dtype(bool), 1: numpy.dtype("int64"), 2: numpy.dtype(backend.default_float()),
                   3: numpy.dtype("complex64")}


def promote_types(a, b):
    """The dtype where dtypes a and b meet (rule 1)."""
    if a is b or a == b:
        return a
    category_a, category_b = CATEGORY[a.kind], CATEGORY[b.kind]
    if category_a != category_b:
        return a if category_a > category_b else b
    return numpy.promote_types(a, b)


def result_type(arrays):
    """The dtype of an op's result on these arrays (rules 1 and 2)."""
    dimensioned = zero_dim = None
    for array in arrays:
        dtype = array.dtype
        if array.ndim:
            dimensioned = dtype if dimensioned is None else promote_types(dimensioned, dtype)
        else:
            zero_dim = dtype if zero_dim is None else promote_types(zero_dim, dtype)
    if dimensioned is None:
        return zero_dim
    if zero_dim is None or CATEGORY[zero_dim.kind] <= CATEGORY[dimensioned.kind]:
        return dimensioned
    return zero_dim


PYTHON_NUMBERS = {bool: 0, int: 1, float: 2, complex: 3}       # the category of each Python number type


def is_number(value):
    """A Python or numpy scalar (rule 3 treats them alike)."""
    return type(value) in PYTHON_NUMBERS or (isinstance(value, numpy.generic) and value.dtype.kind in CATEGORY)


def number_dtype(value, tensors_dtype):
    """The dtype number `value` takes beside tensors whose result is tensors_dtype
    (None: no tensor; the number's own default) (rule 3)."""
    category = PYTHON_NUMBERS.get(type(value))
    if category is None:                                   # a numpy scalar
        category = CATEGORY[value.dtype.kind]
    if tensors_dtype is not None and category <= CATEGORY[tensors_dtype.kind]:
        return tensors_dtype
    return _NUMBER_DEFAULT[category]
