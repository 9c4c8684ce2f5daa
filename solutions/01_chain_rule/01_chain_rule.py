# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 1 — What does autograd compute on a small graph?
#
# > *"I call `b.backward()` and numbers appear in `x.grad`. Where do they come from?"*
#
# This lesson answers that question on the smallest graph that still shows everything:
# three leaf tensors, two additions, two scalings. By the end you can
#
# * predict every `.grad` of a small graph with pencil and paper (the **chain rule**),
# * read the attributes autograd attaches to tensors: `is_leaf`, `requires_grad`, `data`, `grad`, `grad_fn`,
# * walk the recorded graph through `grad_fn.next_functions` and read the backward rule of an op,
# * explain why `a.grad` is `None` for an intermediate tensor — and how `retain_grad()` changes that.
#
# We write every piece of code twice: in **chainrule**, a small autograd library whose
# insides you can read, and in **PyTorch**, which chainrule mirrors name for name. The two
# must agree on every number; the notebook checks that they do.

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
leaves

# %% [markdown]
# ## 1. Intuition: a graph of small steps
#
# When you write `a = x + 2*y`, autograd does two things: it computes the value of `a`
# (the **forward** pass) and it writes down *how* `a` was made — "`a` is the sum of `x`
# and of `2*y`". Every operation becomes a node of a graph that ends at your result.
#
# Each node only needs to know its **local derivative**: how its output moves when one of
# its inputs moves, all else fixed. An addition passes change through unchanged (derivative 1);
# multiplying by 2 doubles it; dividing by 2 halves it. To know how the final result moves
# when a leaf moves, multiply the local derivatives along the path from the leaf to the
# result — and when several paths lead from a leaf to the result, add the paths up.
# That is the whole chain rule, and `backward()` is a machine that applies it to every leaf
# in one sweep from the result back to the leaves.

# %% [markdown]
# ## 2. The math
#
# Our graph: $a = x + 2y$, $\; b = a + \tfrac{z}{2}$, with $x = [2, 1]$, $y = [1, 3]$, $z = [5, 2]$.
# Everything is element-wise, so we can reason about one element at a time.
#
# Local derivatives:
# $$\frac{\partial b}{\partial a} = 1,\quad \frac{\partial b}{\partial z} = \tfrac12,\quad
#   \frac{\partial a}{\partial x} = 1,\quad \frac{\partial a}{\partial y} = 2 .$$
#
# Chained along the paths (there is one path from each leaf to $b$):
# $$\frac{\partial b}{\partial x} = \frac{\partial b}{\partial a}\frac{\partial a}{\partial x} = 1,\qquad
#   \frac{\partial b}{\partial y} = \frac{\partial b}{\partial a}\frac{\partial a}{\partial y} = 2,\qquad
#   \frac{\partial b}{\partial z} = \tfrac12 .$$
#
# `b` has two elements, so `b.backward` needs to be told how much each element of `b` counts:
# with `b.backward(ones_like(b))` it computes the gradient of `b[0] + b[1]`. Each leaf
# element influences only its own element of `b`, so `x.grad = [1, 1]`, `y.grad = [2, 2]`,
# `z.grad = [0.5, 0.5]`. (Lesson 2 is about that argument.)

# %% [markdown]
# ## 3. The forward pass, side by side

# %%
# chainrule
x = chainrule.tensor(leaves["x"], requires_grad=True)
y = chainrule.tensor(leaves["y"], requires_grad=True)
z = chainrule.tensor(leaves["z"], requires_grad=True)
a = x + 2 * y
b = a + z / 2
print("chainrule a =", a)
print("chainrule b =", b)

# %%
# PyTorch
xt = torch.tensor(leaves["x"], dtype=torch.float32, requires_grad=True)
yt = torch.tensor(leaves["y"], dtype=torch.float32, requires_grad=True)
zt = torch.tensor(leaves["z"], dtype=torch.float32, requires_grad=True)
at = xt + 2 * yt
bt = at + zt / 2
print("PyTorch   a =", at)
print("PyTorch   b =", bt)
assert_close(a, at)
assert_close(b, bt)

# %% [markdown]
# Both print `a = [4., 7.]` with a `grad_fn` — the node that made it. Now the attributes
# every autograd user should be able to read:

# %%
def describe(name, t):
    with warnings.catch_warnings():  # PyTorch warns when you read .grad of a non-leaf
        warnings.simplefilter("ignore")
        grad = t.grad
    print(f"{name}: is_leaf={t.is_leaf!s:5}  requires_grad={t.requires_grad!s:5}  "
          f"data={t.data.tolist()}  grad={grad}  grad_fn={t.grad_fn}")

for name, t in [("x", x), ("a", a), ("b", b)]:
    describe("chainrule " + name, t)
for name, t in [("x", xt), ("a", at), ("b", bt)]:
    describe("PyTorch   " + name, t)

# %% [markdown]
# * `x` is a **leaf**: you created it; its `grad_fn` is `None`, and it is where gradients are stored.
# * `a` and `b` are **not leaves**: they were computed, their `grad_fn` is an *add* node
#   (`AddBackward0`), and they require grad because an input does.
# * `grad` is `None` everywhere: nothing has been differentiated yet.

# %% [markdown]
# ## 4. The backward pass, side by side

# %%
b.backward(chainrule.ones_like(b))
bt.backward(torch.ones_like(bt))
for name, leaf, leaf_t in [("x", x, xt), ("y", y, yt), ("z", z, zt)]:
    print(f"{name}.grad   chainrule {leaf.grad}   PyTorch {leaf_t.grad}")
    assert_close(leaf.grad, leaf_t.grad)

# %% [markdown]
# Here are the two recorded graphs, drawn after `backward()`: leaves in blue with their value and
# `.grad`, op nodes in grey, named intermediate tensors in yellow. A graph node knows its op but not
# your variable names, so we pass them with `names=`. Look at `a`: its gradient was needed on the
# way to `x` and `y`, yet the drawing says `grad: None` — section 5 explains why.

# %%
from chainrule.viz import draw_graph, side_by_side

side_by_side(draw_graph(b, names={"x": x, "y": y, "z": z, "a": a, "b": b}),
             draw_graph(bt, names={"x": xt, "y": yt, "z": zt, "a": at, "b": bt}),
             titles=["chainrule", "PyTorch"])

# %% [markdown]
# `x.grad = [1, 1]`, `y.grad = [2, 2]`, `z.grad = [0.5, 0.5]` — the products of local derivatives
# we wrote down. We can also ask autograd for each **local** derivative on its own, by
# differentiating one node with respect to its direct input (`autograd.grad` returns the
# gradient instead of storing it in `.grad`):

# %%
def local_derivative(lib, out, inp):
    (g,) = lib.autograd.grad(out, inp, grad_outputs=lib.ones_like(out), retain_graph=True)
    return g[0].item()

x2 = chainrule.tensor(leaves["x"], requires_grad=True)
y2 = chainrule.tensor(leaves["y"], requires_grad=True)
z2 = chainrule.tensor(leaves["z"], requires_grad=True)
a2 = x2 + 2 * y2
b2 = a2 + z2 / 2
local = {"db/da": local_derivative(chainrule, b2, a2), "db/dz": local_derivative(chainrule, b2, z2),
         "da/dx": local_derivative(chainrule, a2, x2), "da/dy": local_derivative(chainrule, a2, y2)}
chained = {"db/dx": local["db/da"] * local["da/dx"], "db/dy": local["db/da"] * local["da/dy"],
           "db/dz": local["db/dz"]}
print("local:  ", local)
print("chained:", chained)
assert chained == {"db/dx": x.grad[0].item(), "db/dy": y.grad[0].item(), "db/dz": z.grad[0].item()}

# %% [markdown]
# ## 5. Why is `a.grad` `None`?
#
# Autograd stores gradients only in **leaves**. The gradient of `a` was computed on the way
# (it is `[1, 1]`: it had to pass through `a` to reach `x` and `y`), but it was thrown away once used.
# Call `a.retain_grad()` **before** `backward` to keep it:

# %%
def run(lib, retain):
    x_ = lib.tensor(leaves["x"], requires_grad=True)
    y_ = lib.tensor(leaves["y"], requires_grad=True)
    z_ = lib.tensor(leaves["z"], requires_grad=True)
    a_ = x_ + 2 * y_
    if retain:
        a_.retain_grad()
    b_ = a_ + z_ / 2
    b_.backward(lib.ones_like(b_))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return a_.grad

print("without retain_grad: chainrule", run(chainrule, False), "  PyTorch", run(torch, False))
print("with retain_grad:    chainrule", run(chainrule, True), "  PyTorch", run(torch, True))
assert_close(run(chainrule, True), run(torch, True))

# %% [markdown]
# ## 6. Inside chainrule: the graph and the backward rule
#
# `b.grad_fn` is the node that made `b`. Its `next_functions` lists, for each input, the node
# that made that input — so from `b` we can walk all the way back to the leaves, where an
# `AccumulateGrad` node waits to add the gradient into `.grad`. PyTorch has exactly the same
# structure:

# %%
def walk(fn, depth=0):
    """Print the graph below a grad_fn, one node per line."""
    if fn is None:
        print("    " * depth + "None  (a constant: no gradient flows there)")
        return
    print("    " * depth + fn.name())
    for next_fn, _ in fn.next_functions:
        walk(next_fn, depth + 1)

print("chainrule:"); walk(b.grad_fn)
print("PyTorch:");   walk(bt.grad_fn)

# %% [markdown]
# Where does the number 2 of `da/dy = 2` live? In the multiplication node `2 * y`: its backward
# rule multiplies the incoming gradient by the *other* factor. Here is chainrule's own code
# for the two nodes we met — each op states its forward and its backward side by side:

# %%
mul_node = a.grad_fn.next_functions[1][0]  # the node that made 2 * y
print(a.grad_fn.name(), "and", mul_node.name())
print(inspect.getsource(type(a.grad_fn)))   # forward: a + b; local gradients: grad, grad
print(inspect.getsource(type(mul_node)))    # forward: a * b; local gradients: grad * b, grad * a

# %% [markdown]
# Both are *element-wise* ops and share one more step, in their common `backward`: when the two
# inputs have different shapes, the smaller one was *broadcast* — copied along the missing axes —
# and its gradient must add up the contributions of all the copies (`sum_to`). You will write that
# rule yourself in exercise 2.

# %%
print(inspect.getsource(type(a.grad_fn).backward))
print(inspect.getsource(chainrule.ops.sum_to))

# %% [markdown]
# **Try it.** Move the sliders of the leaves `x`, `y`, `z`: both graphs are rebuilt and redrawn.
# The values of `a` and `b` follow the leaves, but the gradients do not move — every local
# derivative of this graph is a constant (1, 2 or ½), so `x.grad`, `y.grad` and `z.grad` are the same
# for any leaves. Untick `a.retain_grad()` and watch `a`'s gradient disappear from both graphs.

# %%
from coursework.widgets import lesson1_graph

lesson1_graph()

# %% [markdown]
# ## 7. The common mistake and its symptom
#
# **Mistake:** reading the gradient of an intermediate tensor without `retain_grad()`.
# **Symptom:** `a.grad` is `None` (PyTorch adds a `UserWarning` about non-leaf tensors), and
# code such as `a.grad * 2` fails with `TypeError: unsupported operand type(s) ... 'NoneType'`.
#
# **Mistake:** calling `backward` a second time. **Symptom:** either an error, because the first
# pass freed the values the graph had saved, or — if you passed `retain_graph=True` — gradients
# that are silently **doubled**, because `.grad` accumulates:

# %%
for lib in (chainrule, torch):
    x_ = lib.tensor(leaves["x"], requires_grad=True)
    y_ = lib.tensor(leaves["y"], requires_grad=True)
    b_ = (x_ * y_).sum()          # a product saves its inputs for the backward pass
    b_.backward(retain_graph=True)
    b_.backward()
    print(f"{lib.__name__:9s} x.grad after two backward calls: {x_.grad}  (y = {leaves['y']})")
    try:
        b_.backward()             # the second call above freed the graph
    except RuntimeError as err:
        print(f"{lib.__name__:9s} third call: RuntimeError: {str(err)[:70]}...")

# %% [markdown]
# ---
# ## Exercises
#
# Every exercise is followed by a test cell. Run it: if your answer is wrong, the message says
# what was expected, what you gave, and — for the usual mistakes — what probably went wrong.
# There are more tests hidden in the grading version, on other inputs: solve the problem, not
# the test. When you are done, use the **Validate** button of the notebook toolbar.
#
# ### Exercise 1 (derivation by hand) — a graph with two paths
#
# Take the graph $a = x \cdot y$, $\; b = a + z$, $\; c = a \cdot b$ (element-wise), seeded with
# `ones_like(c)`. Here $a$ reaches $c$ along **two** paths: directly, and through $b$.
# Derive $\partial c/\partial x$, $\partial c/\partial y$ and $\partial c/\partial z$ with pencil and paper,
# then write your formulas in `hand_gradients` using **NumPy only** (no autograd).
# Check yourself: at $x=[2,1]$, $y=[1,3]$, $z=[5,2]$ you should find $\partial c/\partial x = [9, 24]$.

# %% nbgrader={"grade": false, "grade_id": "l1_ex1_hand_gradients", "locked": false, "schema_version": 3, "solution": true, "task": false}
def hand_gradients(x, y, z):
    """dc/dx, dc/dy, dc/dz of c = (x*y) * (x*y + z), element-wise, as NumPy arrays."""
    ### BEGIN SOLUTION
    a = x * y
    b = a + z
    dc_da = b + a          # direct path (b) plus the path through b (a * db/da)
    return dc_da * y, dc_da * x, a
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l1_ex1_hand_gradients_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_hand_gradients(hand_gradients, [2.0, 1.0], [1.0, 3.0], [5.0, 2.0])
### BEGIN HIDDEN TESTS
checks.check_hand_gradients(hand_gradients, [0.5, -1.0, 3.0], [2.0, 0.25, -1.5], [1.0, 4.0, -2.0])
checks.check_hand_gradients(hand_gradients, [[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.5], [2.0, 1.0]],
                            [[0.0, 1.0], [-3.0, 2.0]])
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (mechanism) — the backward rule of a broadcast addition
#
# `x + bias` with `x` of shape `(4, 3)` and `bias` of shape `(3,)` adds `bias` to every row: the
# bias was **broadcast**, copied 4 times. Each copy contributed to the output, so the gradient
# of `bias` is the **sum** of the output gradient over the copies.
#
# Write `unbroadcast(grad, shape)`: given the gradient of the output (a NumPy array) and the
# shape of an operand, return the operand's gradient, of exactly that `shape`. NumPy's
# broadcasting rules: shapes are aligned on the right; missing leading axes and axes of size 1
# are stretched.

# %% nbgrader={"grade": false, "grade_id": "l1_ex2_unbroadcast", "locked": false, "schema_version": 3, "solution": true, "task": false}
def unbroadcast(grad, shape):
    """Sum `grad` over the axes along which an operand of `shape` was broadcast."""
    ### BEGIN SOLUTION
    shape = tuple(shape)
    extra = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra))) if extra > 0 else grad
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l1_ex2_unbroadcast_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_unbroadcast(unbroadcast, grad_shape=(4, 3), shape=(3,))
checks.check_unbroadcast(unbroadcast, grad_shape=(4, 3), shape=(4, 3))
### BEGIN HIDDEN TESTS
checks.check_unbroadcast(unbroadcast, grad_shape=(4, 3), shape=(4, 1), seed=1)
checks.check_unbroadcast(unbroadcast, grad_shape=(2, 4, 3), shape=(4, 1), seed=2)
checks.check_unbroadcast(unbroadcast, grad_shape=(5, 1, 3), shape=(1, 1), seed=3)
checks.check_unbroadcast(unbroadcast, grad_shape=(3, 2), shape=(), seed=4)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (API) — read a retained gradient
#
# With **chainrule**, create the leaves `u = [1, -2, 0.5]` and `v = [3, 1, 2]`
# (`problems.lesson1_exercise_leaves()` holds them), both requiring grad, compute
# `m = u * v` and `n = m + v ** 2`, and run `n.backward(...)` with a seed of ones so that
# afterwards `u.grad`, `v.grad` **and** `m.grad` hold the gradients of `n.sum()`.

# %% nbgrader={"grade": false, "grade_id": "l1_ex3_retain_grad", "locked": false, "schema_version": 3, "solution": true, "task": false}
ex = problems.lesson1_exercise_leaves()
u = v = m = n = None  # your code below sets them
### BEGIN SOLUTION
u = chainrule.tensor(ex["u"], requires_grad=True)
v = chainrule.tensor(ex["v"], requires_grad=True)
m = u * v
m.retain_grad()
n = m + v ** 2
n.backward(chainrule.ones_like(n))
### END SOLUTION
print("u.grad =", u.grad, " v.grad =", v.grad, " m.grad =", m.grad)

# %% nbgrader={"grade": true, "grade_id": "l1_ex3_retain_grad_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_retained_graph(u, v, m)
### BEGIN HIDDEN TESTS
checks.check_sum_node(n)
### END HIDDEN TESTS
