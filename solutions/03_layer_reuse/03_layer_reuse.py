# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 3 — Can one layer be used twice in one forward pass?
#
# > *"I apply the same `nn.Linear` twice. Its weight has only one `.grad` — which use does the
# > gradient belong to?"*
#
# To both. After this lesson you can
#
# * explain how autograd **unrolls** a repeated call into a chain, with one node per use,
# * derive by hand that the contributions of the uses are **summed** into the one `.grad`
#   (the reason recurrent networks can be trained at all),
# * tell apart the two kinds of accumulation: over uses within one graph (wanted) and over
#   `backward()` calls (wanted only until you zero the gradients).

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
w0, x0, y0 = problems.LESSON3_W, problems.LESSON3_X, problems.LESSON3_Y  # 0.9472, 10, 5
print(f"w = {w0}, x = {x0}, y = {y0}")

# %% [markdown]
# ## 1. Intuition: the graph does not know it is "the same layer"
#
# A module is a bag of parameters plus a recipe. Calling it twice runs the recipe twice: the
# graph gets **two** multiplication nodes, both reading the same weight tensor. Backward walks the
# graph, not your Python code: it reaches the weight once through each node, and the leaf's
# `AccumulateGrad` **adds** what arrives. Each use is one path from the weight to the loss;
# the chain rule sums over paths.

# %% [markdown]
# ## 2. The math
#
# `Linear(1, 1, bias=False)` with weight $w$, applied twice to $x$: output $w(wx) = w^2 x$.
# With the MSE loss against the label $y$: $L = (w^2x - y)^2$ and
# $$\frac{dL}{dw} = 2(w^2x - y)\cdot\frac{d(w\cdot w x)}{dw}
#   = 2(w^2x - y)\,(\underbrace{wx}_{\text{outer use}} + \underbrace{wx}_{\text{inner use}})
#   = 4(w^2x - y)\,w\,x .$$
# Each use contributes $2(w^2x-y)\,wx$; counted once you would get half of the true gradient.

# %%
def hand_formula(w, x, y):
    return 4 * (w * w * x - y) * w * x

print("output w^2 x =", w0 * w0 * x0, "  hand formula dL/dw =", hand_formula(w0, x0, y0))

# %% [markdown]
# ## 3. Side by side: one layer, two uses (float32, as by default)

# %%
def two_uses(lib):
    layer = lib.nn.Linear(1, 1, bias=False)
    with lib.no_grad():
        layer.weight.copy_(lib.tensor([[w0]]))
    x = lib.tensor([[x0]])
    out = layer(layer(x))
    loss = lib.nn.MSELoss()(out, lib.tensor([[y0]]))
    loss.backward()
    return layer, out, loss

layer_c, out_c, loss_c = two_uses(chainrule)
layer_t, out_t, loss_t = two_uses(torch)
print(f"chainrule: output {out_c.item():.4f}   dL/dw {layer_c.weight.grad.item():.2f}")
print(f"PyTorch:   output {out_t.item():.4f}   dL/dw {layer_t.weight.grad.item():.2f}")
assert_close(out_c, out_t)
assert_close(layer_c.weight.grad, layer_t.weight.grad)
# float32 autograd against the float64 hand formula: agreement to about 1e-4 (relative 1e-6)
assert abs(layer_c.weight.grad.item() - hand_formula(w0, x0, y0)) < 1e-3
assert abs(layer_t.weight.grad.item() - hand_formula(w0, x0, y0)) < 1e-3

# %% [markdown]
# ## 4. Each use's contribution
#
# We can measure each use's share by **detaching** the weight in the other use: `w.detach()` is
# the same number but a constant for autograd, so only the live use carries gradient.

# %%
def contribution(lib, live):
    w = lib.tensor([[w0]], dtype=lib.float64, requires_grad=True)
    x = lib.tensor([[x0]], dtype=lib.float64)
    w_inner = w if live in ("inner", "both") else w.detach()
    w_outer = w if live in ("outer", "both") else w.detach()
    out = (x @ w_inner.T) @ w_outer.T
    ((out - y0) ** 2).sum().backward()
    return w.grad.item()

for lib in (chainrule, torch):
    inner, outer, both = (contribution(lib, k) for k in ("inner", "outer", "both"))
    print(f"{lib.__name__:9s} inner use {inner:.4f} + outer use {outer:.4f} = {inner + outer:.4f}"
          f"   (both live: {both:.4f})")
    assert abs(inner + outer - both) < 1e-9

# %% [markdown]
# ## 5. Inside chainrule: one leaf, two edges
#
# Walk the graph from the loss: the weight's `AccumulateGrad` node appears twice — and it is the
# **same object** both times. The engine counts how many edges lead into each node and waits until
# all of them have delivered their gradient, adding them up, before calling the node.

# %%
def find_accumulators(fn, found, path="loss"):
    if fn is None:
        return
    if fn.name().endswith("AccumulateGrad"):  # PyTorch: "torch::autograd::AccumulateGrad"
        found.append((path, fn))
    for i, (nxt, _) in enumerate(fn.next_functions):
        find_accumulators(nxt, found, f"{path} -> {fn.name()}[{i}]")

for lib, loss in (("chainrule", loss_c), ("PyTorch", loss_t)):
    found = []
    find_accumulators(loss.grad_fn, found)
    print(f"{lib}: {len(found)} edges reach an AccumulateGrad node, "
          f"{len({id(fn) for _, fn in found})} distinct node(s)")
    for path, fn in found:
        print("   ", path)
    assert len(found) == 2 and len({id(fn) for _, fn in found}) == 1

# %% [markdown]
# Drawn, the graph shows the weight **once**, with one edge per use. We draw the version of section 4
# with the weight written out, `h = x @ w.T` then `out = h @ w.T`: each use has its own transpose
# node, so the two edges leaving `w` are easy to follow, in both libraries.

# %%
from chainrule.viz import draw_graph, side_by_side

def drawn(lib):
    w = lib.tensor([[w0]], requires_grad=True)
    x = lib.tensor([[x0]])
    h = x @ w.T          # first use
    out = h @ w.T        # second use
    loss = ((out - y0) ** 2).sum()
    loss.backward()
    return draw_graph(loss, names={"w": w, "h": h, "out": out, "loss": loss})

side_by_side(drawn(chainrule), drawn(torch), titles=["chainrule", "PyTorch"])

# %% [markdown]
# The summing itself happens in two places. The engine adds up the gradients arriving at a node
# before running it, in one line of `engine.backpropagate`:

# %%
source = inspect.getsource(chainrule.engine.backpropagate)
print(next(line.strip() for line in source.splitlines() if "pending[child] +" in line))

# %% [markdown]
# and a leaf's node, `AccumulateGrad`, adds what reaches it into `.grad`:

# %%
print(inspect.getsource(chainrule.engine.AccumulateGrad))

# %% [markdown]
# **Try it.** Move `w`. The plot shows the loss $L(w) = (w^2x - y)^2$ and its tangent at `w`, whose
# slope is `w.grad`; the readout compares autograd with the hand formula $4(w^2x - y)\,w\,x$ and splits
# the gradient into the two uses' contributions, which always add up to `w.grad`. Find the three
# values of `w` where the slope is zero, and check them against the formula.

# %%
from coursework.widgets import lesson3_reuse

lesson3_reuse()

# %% [markdown]
# ## 6. The other accumulation: across `backward()` calls
#
# `.grad` also keeps adding across separate backward calls, until you zero it. Useful for
# gradient accumulation over micro-batches; a bug when you simply forgot:

# %%
for lib in (chainrule, torch):
    layer = lib.nn.Linear(1, 1, bias=False)
    with lib.no_grad():
        layer.weight.copy_(lib.tensor([[w0]]))
    grads = []
    for step in range(3):
        loss = lib.nn.MSELoss()(layer(layer(lib.tensor([[x0]]))), lib.tensor([[y0]]))
        loss.backward()
        grads.append(round(layer.weight.grad.item(), 2))
    layer.zero_grad()
    print(f"{lib.__name__:9s} .grad after 1, 2, 3 backward calls: {grads};  after zero_grad(): "
          f"{layer.weight.grad}")

# %% [markdown]
# ## 7. The common mistakes and their symptoms
#
# * **Counting a reused layer once** (by hand, or in a hand-written backward that overwrites instead
#   of adding): gradients too small by a factor of the number of uses here — **75.24** instead of
#   **150.49**; in a recurrent network, the gradient of only the last time step.
# * **Forgetting `zero_grad()`** between steps: gradients that grow 1×, 2×, 3× … and a training run that
#   diverges.

# %% [markdown]
# ---
# ## Exercises
#
# ### Exercise 1 (derivation by hand)
#
# For the layer used twice, $L = (w\,(w\,x) - y)^2$, write $dL/dw$ as a formula in `dL_dw_by_hand`
# (plain Python, no autograd). At $w = 0.9472$, $x = 10$, $y = 5$ it should give about 150.49.
# (Yes, the formula is above: re-derive it rather than copy it — the hidden tests cannot tell,
# but the next exercises build on really understanding it.)

# %% nbgrader={"grade": false, "grade_id": "l3_ex1_dL_dw_by_hand", "locked": false, "schema_version": 3, "solution": true, "task": false}
def dL_dw_by_hand(w, x, y):
    """dL/dw for L = (w * (w * x) - y) ** 2."""
    ### BEGIN SOLUTION
    return 2 * (w * w * x - y) * (w * x + w * x)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l3_ex1_dL_dw_by_hand_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_dL_dw_by_hand(dL_dw_by_hand, 0.9472, 10.0, 5.0)
### BEGIN HIDDEN TESTS
checks.check_dL_dw_by_hand(dL_dw_by_hand, -0.5, 3.0, 1.0)
checks.check_dL_dw_by_hand(dL_dw_by_hand, 1.5, -2.0, 0.25)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (mechanism) — backward through a reused matrix, by hand
#
# A square matrix $W$ is applied `n_uses` times to a vector: $h_0 = x$, $h_k = W h_{k-1}$, and
# $L = \sum (h_n - y)^2$. Write its backward pass in NumPy, the way the engine does it:
# keep the input $h_{k-1}$ of every use during the forward pass; then start from
# $g = \partial L / \partial h_n = 2(h_n - y)$ and walk the uses **backwards**, adding each use's
# contribution $g\,h_{k-1}^\top$ (an outer product) into one gradient for $W$, and passing
# $g \leftarrow W^\top g$ on to the use before. Return $\partial L / \partial W$.

# %% nbgrader={"grade": false, "grade_id": "l3_ex2_reused_linear_grad", "locked": false, "schema_version": 3, "solution": true, "task": false}
def reused_linear_grad(W, x, y, n_uses):
    """dL/dW for L = sum((W^n_uses x - y)**2), summing the contribution of every use."""
    ### BEGIN SOLUTION
    inputs, h = [], x
    for _ in range(n_uses):
        inputs.append(h)
        h = W @ h
    g = 2 * (h - y)
    grad_W = np.zeros_like(W)
    for h_in in reversed(inputs):
        grad_W += np.outer(g, h_in)
        g = W.T @ g
    return grad_W
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l3_ex2_reused_linear_grad_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

# the lesson's scalar layer, used twice: dL/dW = 150.4865...
checks.check_reused_linear_grad(reused_linear_grad, [[0.9472]], [10.0], [5.0], n_uses=2)
checks.check_reused_linear_grad(reused_linear_grad, [[0.5, -0.2], [0.1, 0.9]], [1.0, 2.0], [0.0, 1.0], n_uses=2)
### BEGIN HIDDEN TESTS
checks.check_reused_linear_grad(reused_linear_grad, [[0.9472]], [10.0], [5.0], n_uses=1)
checks.check_reused_linear_grad(reused_linear_grad, [[0.5, -0.2, 0.3], [0.1, 0.9, -0.4], [0.0, 0.2, 0.7]],
                                [1.0, -1.0, 2.0], [0.5, 0.0, 1.0], n_uses=3)
checks.check_reused_linear_grad(reused_linear_grad, [[0.8, 0.1], [-0.3, 0.6]], [2.0, 1.0], [1.0, -1.0], n_uses=5)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (API) — a layer unrolled over time
#
# A tiny recurrent cell: `h_k = tanh(layer(h_{k-1}))` with one `chainrule.nn.Linear(k, k, bias=False)`
# applied `steps` times, and `loss = MSELoss()(h_steps, target)`. Write
# `unrolled_grad(W, h0, target, steps)` that builds the layer with weight `W` (NumPy, shape
# `(k, k)`; work in float64: `.double()` and `dtype=chainrule.float64`), runs the unrolled forward
# and one backward, and returns `layer.weight.grad`. Calling it twice must give the same answer.

# %% nbgrader={"grade": false, "grade_id": "l3_ex3_unrolled_grad", "locked": false, "schema_version": 3, "solution": true, "task": false}
def unrolled_grad(W, h0, target, steps):
    """weight.grad of one Linear layer applied `steps` times (tanh between), MSE loss."""
    ### BEGIN SOLUTION
    layer = chainrule.nn.Linear(W.shape[1], W.shape[0], bias=False).double()
    with chainrule.no_grad():
        layer.weight.copy_(chainrule.tensor(W, dtype=chainrule.float64))
    h = chainrule.tensor(h0, dtype=chainrule.float64)
    for _ in range(steps):
        h = layer(h).tanh()
    loss = chainrule.nn.MSELoss()(h, chainrule.tensor(target, dtype=chainrule.float64))
    loss.backward()
    return layer.weight.grad
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l3_ex3_unrolled_grad_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_unrolled_grad(unrolled_grad, seed=3, steps=4, k=3)
### BEGIN HIDDEN TESTS
checks.check_unrolled_grad(unrolled_grad, seed=7, steps=6, k=2, calls=2)
checks.check_unrolled_grad(unrolled_grad, seed=11, steps=1, k=4)
### END HIDDEN TESTS
