"""Every differentiable op: its forward on arrays and its backward in tensor ops, side by side.

One module per family, read in this order: ``elementwise`` (broadcasting binary ops, then unary
ones), ``reductions``, ``shape`` (views, expand, cat, stack, indexing), ``linalg`` (``@`` and
the linear layer), ``losses`` (``nn.functional``). ``arguments`` holds what ops do with their
arguments first (type promotion, dimension checks, PyTorch's messages). Each op is a class, its
function form right under it.

Conventions for ``backward(self, grad)``:

* ``grad`` has the output's shape, possibly with extra leading axes (``lead``): one per seed
  axis when ``autograd.grad(..., is_grads_batched=True)`` sends many seeds at once. Rules use
  negative axes and ``sum_to(..., lead)`` so that the same code serves both.
* An input broadcast in the forward pass gets its gradient summed back to its shape (``sum_to``).
* ``batch_rule(self, args, batch_dims)``, right after ``backward``: the op under ``vmap``, run
  once on the physical tensors (``batch_dims`` says where each holds its batch, None for an
  unbatched one); it returns the result and where its batch axis is (see ``chainrule.batching``).
  Families share one: ``Elementwise`` (every broadcasting op), ``Pointwise`` (one-input ops).
* ``per_sample_backward(self, grad, i)`` (where defined) gives input ``i``'s gradient for each
  sample of a batch on axis 0 instead of their sum: see ``chainrule.func.per_sample_grad``.
"""
from .elementwise import (Abs, abs, Add, add, bitwise_and, bitwise_not, bitwise_or, Cast, Clamp,
                          clamp, Clone, clone, Cos, cos, Div, div, Elementwise, eq, Exp, exp, ge,
                          gt, le, Log, log, lt, Maximum, maximum, Minimum, minimum, Mul, mul, ne,
                          Neg, neg, Pow, pow, Relu, relu, Remainder, remainder, Sigmoid, sigmoid,
                          SigmoidDerivative, Sign, sign, Sin, sin, Sqrt, sqrt, Sub, sub, Tanh,
                          tanh, TanhDerivative, ToDevice, Where, where)
from .reductions import (all, any, argmax, argmin, Cumsum, cumsum, equal, Max, max, MaxResult,
                         Mean, mean, Min, min, MinResult, Norm, norm, Sum, sum)
from .shape import (Cat, cat, Expand, expand, flatten, Index, index, IndexAdd, matrix_transpose,
                    Permute, permute, Reshape, reshape, Squeeze, squeeze, Stack, stack, sum_to,
                    SumTo, T, t, Transpose, transpose, Unsqueeze, unsqueeze, View, view)
from .linalg import (BatchedOuter, dot, Linear, linear, Matmul, matmul, mm, mv)
from .losses import (binary_cross_entropy_with_logits, BinaryCrossEntropyWithLogits, cross_entropy,
                     log_softmax, LogSoftmax, mse_loss, MseLoss, nll_loss, NllLoss, Softmax,
                     softmax)  # noqa: A004
