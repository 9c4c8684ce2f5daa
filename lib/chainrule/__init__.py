"""chainrule: a small, readable autograd library with PyTorch's names and semantics.

Read it in this order: ``engine`` (the graph and its traversal), ``function`` (how an op records
itself), ``ops`` (every op's forward and backward side by side, one module per family:
elementwise, reductions, shape, linalg, losses), ``tensor``, ``autograd``
(``backward`` and ``grad``), then ``nn``, ``optim`` and ``func`` (per-sample and per-loss gradients).
"""
from . import autograd, cuda, dtypes, func, nn, optim, testing
from .creation import (arange, as_tensor, empty, eye, from_numpy, full, full_like, linspace,
                       manual_seed, normal, ones, ones_like, rand, rand_like, randn, randn_like,
                       tensor, zeros, zeros_like)
from .device import device, get_default_device, set_default_device
from .dtypes import (bool, dtype, float32, float64, get_default_dtype, int64,  # noqa: A004
                     set_default_dtype)
from .anomaly_mode import is_anomaly_check_nan_enabled, is_anomaly_enabled
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,
                        no_grad, set_grad_enabled)
from .ops import (abs, add, all, any, argmax, argmin, cat, clamp, clone, cos,  # noqa: A004
                  cumsum, div, dot, eq, equal, exp, flatten, ge, gt, le, linear, log, log_softmax,
                  lt, matmul, max, maximum, mean, min, minimum, mm, mul, mv, ne, neg, norm, permute,
                  pow, relu, reshape, sigmoid, sin, softmax, sqrt, squeeze, stack, sub, sum, tanh,
                  transpose, unsqueeze, where)
from .func import vmap  # torch.vmap, the same as torch.func.vmap
from .stand_in import install_as_torch, not_covered_in
from .tensor import Size, Tensor

sin_ = Tensor.sin_  # torch.sin_(x), the in-place form
float = float32  # noqa: A001 - PyTorch's aliases
double = float64
long = int64

__version__ = "0.1.0"


__getattr__ = not_covered_in('torch')  # what PyTorch has and chainrule lacks: one clear line
