# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 2 — Why does `backward()` need an argument for a vector output?
#
# > *"`loss.backward()` works, but `b.backward()` says
# > `grad can be implicitly created only for scalar outputs`. What does it want from me?"*
#
# After this lesson you can
#
# * say what `backward(gradient=v)` computes — a **vector-Jacobian product** $v^\top J$,
# * choose the seed `v` on purpose: ones for a sum, weights for a weighted sum, one-hot vectors for
#   single rows of the Jacobian,
# * build a full Jacobian row by row, and recognise a seed of the wrong shape from its error.

# %%
import inspect
import warnings

import numpy as np
import torch

import chainrule
from chainrule.testing import assert_close
from coursework import problems

torch.manual_seed(0)
chainrule.manual_seed(0)
leaves = problems.lesson1_leaves()  # x = [2, 1], y = [1, 3], z = [5, 2]


def build(lib):
    """The graph of lesson 1: a = x + 2y, b = a + z/2."""
    x = lib.tensor(leaves["x"], requires_grad=True)
    y = lib.tensor(leaves["y"], requires_grad=True)
    z = lib.tensor(leaves["z"], requires_grad=True)
    b = (x + 2 * y) + z / 2
    return x, y, z, b

# %% [markdown]
# ## 1. Intuition: backward differentiates a *number*
#
# A derivative answers "how does **one number** change when the inputs change?". A loss is one
# number, so `loss.backward()` knows what to do. But `b` holds two numbers, `b[0]` and `b[1]`:
# `x.grad` has room for only one gradient per element of `x`, so autograd must be told *which
# number built from b* to differentiate. The seed `v` says it: `b.backward(gradient=v)`
# differentiates $\sum_i v_i\, b_i$ — a weighted sum of the outputs, with the weights you choose.

# %% [markdown]
# ## 2. The math: vector-Jacobian products
#
# The Jacobian $J = \partial b / \partial x$ has one **row per output element** and one column per
# input element. With the seed $v$, backward computes
# $$ x.\mathrm{grad} = v^\top J = \frac{\partial}{\partial x} \Big(\sum_i v_i b_i\Big), $$
# without ever building $J$: it pushes $v$ backwards through each node's local rule.
# That is why backward is cheap — and why, for a vector output, it cannot run without $v$.
#
# For our graph $J_x = I$, $J_y = 2I$, $J_z = \tfrac12 I$, so $x.\mathrm{grad} = v$,
# $y.\mathrm{grad} = 2v$, $z.\mathrm{grad} = v/2$. Seeding with $2\cdot\mathbf 1$ doubles every
# gradient; a one-hot seed $e_i$ picks out row $i$ of $J$.

# %% [markdown]
# ## 3. Without a seed: the error, in both libraries

# %%
for lib in (chainrule, torch):
    *_, b = build(lib)
    try:
        b.backward()
    except RuntimeError as err:
        print(f"{lib.__name__:9s} RuntimeError: {err}")

# %% [markdown]
# ## 4. A seed is a weighting: `b.backward(gradient=v)` equals `(b * v).sum().backward()`

# %%
results = {}
for lib in (chainrule, torch):
    v = lib.tensor([1.0, 1.0])
    x, y, z, b = build(lib)
    b.backward(gradient=v)
    x2, y2, z2, b2 = build(lib)
    (b2 * v).sum().backward()
    x3, y3, z3, b3 = build(lib)
    b3.backward(gradient=2 * lib.ones_like(b3))
    results[lib.__name__] = (x.grad, y.grad, z.grad)
    print(f"{lib.__name__:9s} seed ones:          x.grad={x.grad}  y.grad={y.grad}  z.grad={z.grad}")
    print(f"{lib.__name__:9s} (b * ones).sum():   x.grad={x2.grad}  y.grad={y2.grad}  z.grad={z2.grad}")
    print(f"{lib.__name__:9s} seed 2 * ones:      x.grad={x3.grad}  y.grad={y3.grad}  z.grad={z3.grad}")
    for g1, g2, g3 in ((x.grad, x2.grad, x3.grad), (y.grad, y2.grad, y3.grad), (z.grad, z2.grad, z3.grad)):
        assert_close(g1, g2)
        assert_close(g3, 2 * g1)
for g_c, g_t in zip(results["chainrule"], results["torch"]):
    assert_close(g_c, g_t)

# %% [markdown]
# ## 5. The full Jacobian, one row per one-hot seed
#
# Take a function whose Jacobian is not diagonal, $f(x) = x \cdot \sum_j x_j$ (every output depends
# on every input). Seeding with $e_0 = [1, 0, 0]$ gives row 0 of $J$, $e_1$ row 1, and so on.
# We need `retain_graph=True`: every seed walks the same graph, and a backward pass frees it by
# default. `autograd.grad` returns the gradient instead of adding it into `.grad`, so the rows do
# not pile up. Here is the loop in PyTorch (exercise 2 asks you for the chainrule version):

# %%
def f(x):
    return x * x.sum()

x0 = np.array([1.0, 2.0, 3.0])
x_t = torch.tensor(x0, dtype=torch.float32, requires_grad=True)
out_t = f(x_t)
rows = []
for i in range(out_t.shape[0]):
    seed = torch.zeros_like(out_t)
    seed[i] = 1.0                                       # the one-hot seed e_i
    (row,) = torch.autograd.grad(out_t, x_t, grad_outputs=seed, retain_graph=True)
    rows.append(row)
J_torch = torch.stack(rows)
J_reference = torch.autograd.functional.jacobian(f, torch.tensor(x0, dtype=torch.float32))
print("PyTorch, row by row:\n", J_torch)
print("torch.autograd.functional.jacobian:\n", J_reference)
assert_close(J_torch, J_reference)

# %% [markdown]
# The loop runs one backward pass per output. Both libraries can also push **all the seeds at
# once**: `autograd.grad(..., is_grads_batched=True)` takes a stack of seeds (here the identity
# matrix, one one-hot seed per row) and returns the stack of vector-Jacobian products in one
# vectorised pass; `func.jacobian` is built on it.

# %%
def jacobian_batched(lib, f, x):
    out = f(x)
    (J,) = lib.autograd.grad(out, x, grad_outputs=lib.eye(out.shape[0], dtype=out.dtype),
                             is_grads_batched=True)
    return J

with warnings.catch_warnings():  # PyTorch's vmap may warn that it is a prototype on some versions
    warnings.simplefilter("ignore")
    J_batched_torch = jacobian_batched(torch, f, torch.tensor(x0, dtype=torch.float32, requires_grad=True))
J_batched = jacobian_batched(chainrule, f, chainrule.tensor(x0, requires_grad=True))
J_func = chainrule.func.jacobian(f, chainrule.tensor(x0))
print("chainrule, all seeds at once:\n", J_batched)
assert_close(J_batched, J_reference)
assert_close(J_batched_torch, J_reference)
assert_close(J_func, J_reference)

# %% [markdown]
# ## 6. Inside chainrule: where the seed enters
#
# `Tensor.backward` passes the call on to `chainrule.autograd.backward`, which first makes one seed
# per output in `_seeds`, printed below: it checks the seed you gave (a tensor, with exactly the
# output's shape), or creates the implicit `1` for a scalar output — and refuses otherwise, with
# the messages you met above. Then it hands the output's node and the seed to the engine
# (`engine.backpropagate`), which walks the graph in reverse topological order, calling each
# node's backward rule with the gradient of its output.

# %%
print(inspect.getsource(chainrule.autograd._seeds))

# %% [markdown]
# **Try it.** Drag the two components of the seed `v`. In the table, `b.backward(gradient=v)`,
# `(b * v).sum().backward()` and $v^\top J$ worked out by hand always agree; `x.grad` follows `v`,
# `y.grad` follows `2v` and `z.grad` follows `v/2`. Then set `v = [1, 0]` and `v = [0, 1]`: a one-hot
# seed gives one row of each Jacobian.

# %%
from coursework.widgets import lesson2_seeds

lesson2_seeds()

# %% [markdown]
# ## 7. The common mistake and its symptom
#
# **Mistake:** a seed that does not have the shape of the output — a scalar, the shape of the
# input, or an extra axis. **Symptom:** an error naming both shapes. (A seed of the right shape
# but the wrong *values* — say all ones when you wanted a weighted sum — raises nothing: the
# numbers are just those of another question.)

# %%
for lib in (chainrule, torch):
    *_, b = build(lib)
    try:
        b.backward(gradient=lib.ones(1, 2))
    except RuntimeError as err:
        print(f"{lib.__name__:9s} RuntimeError: {err}")

# %% [markdown]
# ---
# ## Exercises
#
# Run each test cell after your answer. Hidden tests probe other inputs when the notebook is
# graded. Use the **Validate** button when you are done.
#
# ### Exercise 1 (derivation by hand) — a Jacobian
#
# For $f(x_0, x_1) = \big[\,x_0 x_1,\; x_0^2 + 3 x_1\,\big]$ derive the $2\times 2$ Jacobian
# $J_{ij} = \partial f_i / \partial x_j$ by hand (one row per output!) and write it as a function of
# the point, in plain Python or NumPy.

# %% nbgrader={"grade": false, "grade_id": "l2_ex1_jacobian_by_hand", "locked": false, "schema_version": 3, "solution": true, "task": false}
def jacobian_by_hand(x0, x1):
    """The Jacobian of f(x) = [x0*x1, x0**2 + 3*x1] at (x0, x1), as a 2x2 nested list or array."""
    ### BEGIN SOLUTION
    return [[x1, x0], [2 * x0, 3.0]]
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l2_ex1_jacobian_by_hand_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_jacobian_by_hand(jacobian_by_hand, [2.0, 1.0])
### BEGIN HIDDEN TESTS
checks.check_jacobian_by_hand(jacobian_by_hand, [-1.5, 4.0])
checks.check_jacobian_by_hand(jacobian_by_hand, [0.25, -3.0])
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (mechanism) — a Jacobian from one-hot seeds
#
# Write `jacobian_rows(f, x)` for a 1-D chainrule tensor `x` (which requires grad) and a
# function `f` returning a 1-D chainrule tensor: evaluate `f(x)` **once**, then build the
# Jacobian row by row with one-hot seeds and `chainrule.autograd.grad`. Return it as a
# chainrule tensor or a NumPy array of shape `(len(f(x)), len(x))`. Do not use
# `is_grads_batched` or `chainrule.func.jacobian` here: the point is the loop.

# %% nbgrader={"grade": false, "grade_id": "l2_ex2_jacobian_rows", "locked": false, "schema_version": 3, "solution": true, "task": false}
def jacobian_rows(f, x):
    """The Jacobian of f at x, one vector-Jacobian product per output element."""
    ### BEGIN SOLUTION
    out = f(x)
    rows = []
    for i in range(out.shape[0]):
        seed = np.zeros(out.shape)
        seed[i] = 1.0
        (row,) = chainrule.autograd.grad(out, x, grad_outputs=chainrule.tensor(seed, dtype=out.dtype),
                                         retain_graph=True)
        rows.append(row.numpy())
    return np.stack(rows)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l2_ex2_jacobian_rows_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_jacobian_rows(jacobian_rows, "b = x * x + 3 * x", [1.0, -2.0, 0.5])
checks.check_jacobian_rows(jacobian_rows, "b = x.exp() * x.sum()", [0.1, 0.2, 0.3])
### BEGIN HIDDEN TESTS
checks.check_jacobian_rows(jacobian_rows, "b = (x * x).sum() * x / 2", [1.0, 2.0, -1.0, 0.5])
checks.check_jacobian_rows(jacobian_rows, "b = x.tanh() + x[0] * x", [0.3, -0.7])
checks.check_jacobian_rows(jacobian_rows, "b = x.exp() * x.sum()", [2.0])
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (API) — a weighted sum with a single backward call
#
# Write `weighted_gradients(weights)`: build the graph of this lesson fresh with chainrule
# (`build(chainrule)` does it), and with **one** call of `b.backward(...)` compute the gradient of
# $\sum_i \text{weights}_i\, b_i$ with respect to `x`, `y` and `z`. Return
# `(x.grad, y.grad, z.grad)`. (`weights` arrives as a NumPy array with one entry per element of `b`.)

# %% nbgrader={"grade": false, "grade_id": "l2_ex3_weighted_gradients", "locked": false, "schema_version": 3, "solution": true, "task": false}
def weighted_gradients(weights):
    """x.grad, y.grad, z.grad of sum_i weights[i] * b[i], from one backward call."""
    ### BEGIN SOLUTION
    x, y, z, b = build(chainrule)
    b.backward(gradient=chainrule.tensor(weights, dtype=b.dtype))
    return x.grad, y.grad, z.grad
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l2_ex3_weighted_gradients_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_weighted_gradients(weighted_gradients, [3.0, -1.0])
### BEGIN HIDDEN TESTS
checks.check_weighted_gradients(weighted_gradients, [0.5, 2.0])
checks.check_weighted_gradients(weighted_gradients, [2.0, 2.0])
### END HIDDEN TESTS
