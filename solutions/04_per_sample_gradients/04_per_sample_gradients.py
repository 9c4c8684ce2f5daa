# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 4 — How do I get the gradient for every input, not the sum?
#
# > *"I have 1000 inputs. I want d output / d weight for **each** of them — a `(1000, 5)` matrix.
# > `.backward()` gives me a `(5, 1)` tensor. Where did the other 999 rows go?"*
#
# They were added up. After this lesson you can
#
# * say exactly what `.grad` holds after a backward pass over a batch (the **sum** of the
#   per-sample gradients — not the mean, not one per input),
# * get the per-sample gradients four ways — a loop, the vectorised outer product (which you write
#   in the exercises), `chainrule.func.per_sample_grad` and `vmap(grad(...))`, in `torch.func` and in
#   `chainrule.func` — and check they agree,
# * open up `vmap`: read the batching rule each op carries, and write one yourself,
# * write the training step by hand: `p -= lr * p.grad` under `no_grad`, and zero the gradients
#   between steps.

# %%
import inspect
import time
import warnings

import numpy as np
import torch

import chainrule
from chainrule.testing import assert_close
from coursework import problems

torch.manual_seed(0)
chainrule.manual_seed(0)
weights = problems.lesson4_weights()        # {'0.weight': (5, 1), '2.weight': (1, 5)}, fixed seed
features = problems.lesson4_features()      # (1000, 1), evenly spread over [-3, 3]
print({k: v.shape for k, v in weights.items()}, features.shape)

# %% [markdown]
# ## 1. The network, side by side
#
# `Linear(1, 5, bias=False)` → sigmoid → `Linear(5, 1, bias=False)` → identity. We work in
# **float64** in this lesson: we will compare sums of 1000 terms between libraries and methods,
# and want agreement to 1e-10, not to float32's 1e-6.

# %%
def make_model(lib):
    model = lib.nn.Sequential(lib.nn.Linear(1, 5, bias=False), lib.nn.Sigmoid(),
                              lib.nn.Linear(5, 1, bias=False)).double()
    with lib.no_grad():
        for name, p in model.named_parameters():
            p.copy_(lib.tensor(weights[name], dtype=lib.float64))
    return model

model_c, model_t = make_model(chainrule), make_model(torch)
X_c = chainrule.tensor(features, dtype=chainrule.float64)
X_t = torch.tensor(features, dtype=torch.float64)
out_c, out_t = model_c(X_c), model_t(X_t)
print("output shape:", tuple(out_c.shape), tuple(out_t.shape))
assert_close(out_c, out_t)

# %% [markdown]
# ## 2. What `.backward()` over the batch gives
#
# `out` has 1000 elements, so (lesson 2) it needs a seed; with ones it differentiates
# $\sum_n \text{out}_n$. The derivative of a sum is the sum of the derivatives: each weight's
# `.grad` holds $\sum_n \partial\,\text{out}_n / \partial W$ — one number per weight entry.

# %%
out_c.backward(gradient=chainrule.ones_like(out_c))
out_t.backward(gradient=torch.ones_like(out_t))
for (name, p_c), (_, p_t) in zip(model_c.named_parameters(), model_t.named_parameters()):
    print(f"{name}: .grad shape {tuple(p_c.grad.shape)} (chainrule) {tuple(p_t.grad.shape)} (PyTorch)")
    assert_close(p_c.grad, p_t.grad)

# %% [markdown]
# ## 3. The intuition and the math of per-sample gradients
#
# For one input $x_n$ (a scalar), with $s = \sigma(W_1 x_n) \in \mathbb R^5$:
# $$\text{out}_n = W_2\, s, \qquad
#   \frac{\partial\,\text{out}_n}{\partial W_2} = s^\top, \qquad
#   \frac{\partial\,\text{out}_n}{\partial W_1} = \big(W_2^\top \odot s \odot (1 - s)\big)\, x_n .$$
# Both are **outer products** of two things backward already has for every sample:
# the *backprop signal* arriving at the layer's output ($\delta_n = \partial\,\text{out}_n/\partial(\text{layer output})$)
# and the layer's *input* ($a_n$): $\;\partial\,\text{out}_n / \partial W = \delta_n a_n^\top$.
# An ordinary backward computes $\sum_n \delta_n a_n^\top = \Delta^\top A$ — a matrix product that
# sums over the batch. A per-sample backward simply does **not** sum: it keeps
# $\delta_n a_n^\top$ for each $n$. Same cost, one more axis.

# %% [markdown]
# ## 4. Four ways to the `(1000, 5)` matrices — one of them yours
#
# **(a) The loop** — one batch-size-1 backward per input. Correct, and slow.

# %%
def per_sample_loop(lib, model, X, n):
    rows1, rows2 = [], []
    for i in range(n):
        model.zero_grad()
        model(X[i:i + 1]).sum().backward()
        rows1.append(model[0].weight.grad.reshape(-1).numpy().copy())
        rows2.append(model[2].weight.grad.reshape(-1).numpy().copy())
    return np.stack(rows1), np.stack(rows2)

t0 = time.perf_counter()
loop_c = per_sample_loop(chainrule, make_model(chainrule), X_c, len(features))
t_loop = time.perf_counter() - t0
print(f"loop over {len(features)} samples: {t_loop * 1e3:.0f} ms; G1 {loop_c[0].shape}, G2 {loop_c[1].shape}")

# %% [markdown]
# **(b) The outer product, by hand** — one forward pass in NumPy, the signal $\delta_n$ and the input
# $a_n$ of each layer, one outer product per sample, all vectorised: no loop, and a few NumPy lines.
# That one is yours: exercises 1 and 2 below.
#
# **(c) chainrule's `func.per_sample_grad`** — the same outer products, done by the library's
# backward pass for any model built from its layers. **(d) `vmap(grad(...))`**: `grad` of a function
# of *one* sample, vectorised over the batch by `vmap`. PyTorch's `torch.func` is the reference;
# `chainrule.func` has the same functions, which section 6 opens up.

# %%
def best_of_5_ms(f):
    """f's result and its best time of 5 calls, after one call to warm up (vmap traces on its first)."""
    result = f()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return result, min(times) * 1e3

model_psg = make_model(chainrule)
psg, t_psg = best_of_5_ms(lambda: chainrule.func.per_sample_grad(model_psg, X_c))
print({k: tuple(v.shape) for k, v in psg.items()}, f"{t_psg:.2f} ms")

from torch.func import functional_call, grad, vmap

def one_output(params, x):
    return functional_call(model_t, params, (x.unsqueeze(0),)).squeeze()

params_t = {k: v.detach() for k, v in model_t.named_parameters()}
ref, t_vmap = best_of_5_ms(lambda: vmap(grad(one_output), in_dims=(None, 0))(params_t, X_t))
print("torch.func:    ", {k: tuple(v.shape) for k, v in ref.items()}, f"{t_vmap:.2f} ms")

def one_output_c(params, x):  # the same function, with chainrule's functional_call
    return chainrule.func.functional_call(model_c, params, (x.unsqueeze(0),)).squeeze()

params_c = {k: v.detach() for k, v in model_c.named_parameters()}
vmapped, t_vmap_c = best_of_5_ms(
    lambda: chainrule.func.vmap(chainrule.func.grad(one_output_c), in_dims=(None, 0))(params_c, X_c))
print("chainrule.func:", {k: tuple(v.shape) for k, v in vmapped.items()}, f"{t_vmap_c:.2f} ms")

# %%
N = len(features)
G1_ref, G2_ref = ref["0.weight"].reshape(N, 5), ref["2.weight"].reshape(N, 5)
for g in (psg, vmapped):
    assert_close(g["0.weight"].reshape(N, 5), G1_ref)
    assert_close(g["2.weight"].reshape(N, 5), G2_ref)
assert_close(loop_c[0], G1_ref)
assert_close(loop_c[1], G2_ref)
print("the loop, per_sample_grad and both vmaps agree; first rows of G1:\n", G1_ref[:3].numpy())
# ... and their column sums are exactly the .grad of the batch backward of section 2:
assert_close(G1_ref.sum(0), model_t[0].weight.grad.reshape(-1))
assert_close(G2_ref.sum(0), model_t[2].weight.grad.reshape(-1))

# %% [markdown]
# Look at the first weight once more. Its `.grad` is zero up to rounding, yet not one sample has a zero
# gradient: the inputs lie symmetrically around 0, and for this weight the gradient of input $x$ is
# minus that of input $-x$ (an odd function of $x$), so the sum cancels. `.grad` could not have told you.

# %%
print(f"largest |.grad| of weight1:                 {model_c[0].weight.grad.abs().max().item():.1e}")
print(f"largest |per-sample gradient| of weight1:   {np.abs(G1_ref.numpy()).max():.3f}")
print(f"samples whose weight1 gradient is below 1e-6: {int((np.abs(G1_ref.numpy()).max(1) < 1e-6).sum())} of {N}")

# %% [markdown]
# ## 5. Inside chainrule: the per-sample backward
#
# `chainrule.func.per_sample_grad` runs one forward and one backward pass, as `.backward()` does.
# The difference is in the rule for a linear layer's weight: where the ordinary rule
# (`Linear.backward`) computes $\Delta^\top A$, summing over the batch, the per-sample rule keeps the
# batch axis: one outer product $\delta_s a_s^\top$ per sample $s$. Here it is, next to the layer's op
# in `chainrule/ops/linalg.py`:

# %%
print(inspect.getsource(chainrule.ops.Linear.per_sample_backward))

# %% [markdown]
# **Try it.** Move the sample index `i`: the bars show that sample's rows of `G1` and `G2` (red) next to
# the batch mean (grey), and the table adds the batch sum — what `.grad` holds. Compare a sample with
# its mirror image `999 − i` (input $-x_i$): its row of `G1` flips sign, which is why the first weight's
# sum cancels to zero although no single sample's gradient is zero.

# %%
from coursework.widgets import lesson4_per_sample

lesson4_per_sample()

# %% [markdown]
# ## 6. Inside `vmap`: one batching rule per op
#
# `vmap(f)` does not loop: it calls `f` **once**. `f` was written for one sample; what it receives is
# a `BatchedTensor`. That tensor shows one sample's shape (its *logical* shape, all that `f` sees) and
# holds the whole batch (its *physical* tensor, with the batch on one axis):

# %%
def peek(x):
    print(f"f sees shape {tuple(x.shape)}; inside: {type(x).__name__} holding {tuple(x.physical.shape)}, "
          f"batch on axis {x.batch_dim}")
    return (x * 2).sum()

print("result:", chainrule.func.vmap(peek)(X_c[:4]))

# %% [markdown]
# Every op that meets a batched input hands the physical tensors to its **batching rule**, a method
# written next to the op's `forward` and `backward`. The rule runs the op once on the whole batch,
# with ordinary tensor ops, and says on which axis the result keeps the batch. If $X$ stacks the
# samples $x_n$ on axis 0, the rule must give $\text{vmap}(f)(X)_n = f(x_n)$ for its op $f$:
#
# * **Elementwise ops** (`+`, `*`, the pieces of the sigmoid): every batch axis goes first and every
#   sample is padded to the same rank. Broadcasting then pairs sample $n$ with sample $n$, and an
#   input without a batch (a weight) is shared by all samples.
# * **A sum over a sample's axis $d$** is a sum over the physical axis $d + 1$ once the batch is first:
#   $\big(\sum_{d} x_n\big) = \big(\sum_{d+1} X\big)_n$.

# %%
from chainrule import batching
from chainrule.ops import elementwise, reductions

print(inspect.getsource(elementwise.Elementwise.batch_rule))
print(inspect.getsource(batching.aligned))
print(inspect.getsource(reductions.Sum.batch_rule))

# %% [markdown]
# And `grad` inside `vmap`? `grad` records the graph on the batched tensors, and the backward pass,
# written with tensor ops, meets batched tensors too: it goes through the same rules. So
# `vmap(grad(f))` is one forward and one backward pass over the whole batch, the same work as
# `per_sample_grad` (section 4 timed both). What a batch cannot do is answer a Python question about
# one sample: `if x > 0:` needs one `True` or `False`, and `x` holds 1000 samples. Both libraries refuse,
# in the same words:

# %%
def absolute(x):
    return x if x > 0 else -x

for lib in (chainrule, torch):
    try:
        lib.func.vmap(absolute)(lib.tensor(features[:3, 0]))
    except RuntimeError as error:
        print(f"{lib.__name__}: {error}")

# %% [markdown]
# ## 7. The training step, by hand
#
# With `.grad` in hand, plain SGD is one line per parameter, `p -= lr * p.grad`. It must run under
# `no_grad()` — the update is not part of the model — and the gradients must be zeroed before the
# next backward, or they pile up (lesson 3). That is all an optimizer such as `optim.SGD` does in
# `step()` and `zero_grad()`; here is the usual loop with one, fitting the network to $\tanh(x)$ with
# the MSE loss (you write it without the optimizer in exercise 4):

# %%
targets = problems.lesson4_targets(features)

def train(lib, steps, lr, zero=True):
    model = make_model(lib)
    optimizer = lib.optim.SGD(model.parameters(), lr=lr)
    X, Y = lib.tensor(features, dtype=lib.float64), lib.tensor(targets, dtype=lib.float64)
    losses = []
    for _ in range(steps):
        if zero:
            optimizer.zero_grad()
        loss = lib.nn.MSELoss()(model(X), Y)
        loss.backward()
        optimizer.step()
        losses.append(round(loss.item(), 5))
    return model, losses

for zero in (True, False):
    (m_c, l_c), (m_t, l_t) = train(chainrule, 6, 0.5, zero), train(torch, 6, 0.5, zero)
    print(f"zero_grad={zero!s:5}  chainrule losses {l_c}\n                 PyTorch   losses {l_t}")
    assert_close(m_c[0].weight, m_t[0].weight)

# %% [markdown]
# ## 8. The common mistakes and their symptoms
#
# * **Taking `.grad` for per-sample gradients.** Symptom: shape `(5, 1)` instead of `(1000, 5)`; or,
#   after a reshape, a matrix whose every row is the same — the sum.
# * **Dividing by the batch size and calling it per-sample.** With `MSELoss(reduction='mean')` each
#   sample's term carries a factor 1/N: the mean of per-sample gradients is still not a per-sample
#   gradient.
# * **Forgetting to zero between steps.** Symptom: the loss first falls, then the steps grow and it
#   rises (above: `zero_grad=False`).
# * **Python control flow on a sample inside `vmap`.** Symptom: "vmap: It looks like you're attempting
#   to use a Tensor in some data-dependent control flow". Write it with tensor ops (`torch.where`).

# %% [markdown]
# ---
# ## Exercises
#
# ### Exercise 1 (derivation by hand) — the per-sample formulas
#
# Using the formulas of section 3, write `per_sample_by_hand(x, W1, W2)` in NumPy: `x` has shape
# `(N, 1)`, `W1` `(5, 1)`, `W2` `(1, 5)`. Return `(G1, G2)`, each of shape `(N, 5)`, with row `n`
# holding $\partial\,\text{out}_n/\partial W_1$ (flattened) and $\partial\,\text{out}_n/\partial W_2$.

# %% nbgrader={"grade": false, "grade_id": "l4_ex1_per_sample_by_hand", "locked": false, "schema_version": 3, "solution": true, "task": false}
def per_sample_by_hand(x, W1, W2):
    """Per-sample d out/d W1 and d out/d W2, each (N, 5), for out = W2 sigmoid(W1 x)."""
    ### BEGIN SOLUTION
    s = 1 / (1 + np.exp(-(x @ W1.T)))
    return W2 * s * (1 - s) * x, s
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l4_ex1_per_sample_by_hand_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_per_sample_by_hand(per_sample_by_hand, n=6)
### BEGIN HIDDEN TESTS
checks.check_per_sample_by_hand(per_sample_by_hand, n=1000)
checks.check_per_sample_by_hand(per_sample_by_hand, n=3, seed=21)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (mechanism) — the per-sample outer product of a linear layer
#
# For a linear layer $y = W a$ (no bias) applied to a batch, write `linear_per_sample(inputs, signal)`:
# `inputs` has shape `(N, in)` (the $a_n$), `signal` has shape `(N, out)` (the $\delta_n$, the gradient
# arriving at each sample's output). Return the per-sample weight gradients, shape `(N, out, in)`:
# entry `[n, i, j]` is $\delta_{n,i}\, a_{n,j}$. Vectorised please — no Python loop over samples.

# %% nbgrader={"grade": false, "grade_id": "l4_ex2_linear_per_sample", "locked": false, "schema_version": 3, "solution": true, "task": false}
def linear_per_sample(inputs, signal):
    """Per-sample gradients of a linear layer's weight: (N, out, in)."""
    ### BEGIN SOLUTION
    return signal[:, :, None] * inputs[:, None, :]
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l4_ex2_linear_per_sample_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_linear_per_sample(linear_per_sample, n=4, n_in=3, n_out=2)
### BEGIN HIDDEN TESTS
checks.check_linear_per_sample(linear_per_sample, n=1000, n_in=1, n_out=5, seed=1)
checks.check_linear_per_sample(linear_per_sample, n=7, n_in=5, n_out=5, seed=2)
checks.check_linear_per_sample(linear_per_sample, n=1, n_in=2, n_out=3, seed=3)
### END HIDDEN TESTS

# %% [markdown]
# With your outer product, the four routes meet. The backprop signal $\delta_n$ at a layer's output is
# what an ordinary backward pass already computes, one row per sample (`h.grad` below: sample $n$'s
# output depends on its own row of `h` only). Your `linear_per_sample` turns it into per-sample
# gradients, which agree with the loop, `per_sample_grad` and `vmap`:

# %%
h = model_c[0](X_c)                     # the first layer's output, (N, 5)
h.retain_grad()
s_c = model_c[1](h)                     # the second layer's input, (N, 5)
model_c[2](s_c).sum().backward()
G1_yours = linear_per_sample(X_c.numpy(), h.grad.numpy())                     # (N, 5, 1)
G2_yours = linear_per_sample(s_c.detach().numpy(), np.ones((N, 1)))           # (N, 1, 5)
for g1, g2 in ((G1_yours, G2_yours), loop_c, (vmapped["0.weight"], vmapped["2.weight"])):
    assert_close(g1.reshape(N, 5), G1_ref)
    assert_close(g2.reshape(N, 5), G2_ref)
print("your outer product, the loop, per_sample_grad and both vmaps agree")

# %% [markdown]
# ### Exercise 3 (API) — the full `(1000, 5)` matrices
#
# Write `per_sample_matrices(x)`: build the lesson's model with chainrule (`make_model(chainrule)`),
# and return `(G1, G2)`, the per-sample gradients of the output with respect to the first and the
# second weight for every row of `x` (shape `(N, 1)`), each of shape `(N, 5)`. Use the library
# (`chainrule.func.per_sample_grad`) or your own code — but one row per sample.

# %% nbgrader={"grade": false, "grade_id": "l4_ex3_per_sample_matrices", "locked": false, "schema_version": 3, "solution": true, "task": false}
def per_sample_matrices(x):
    """(G1, G2): per-sample d out/d weight1 and d out/d weight2, each (N, 5)."""
    ### BEGIN SOLUTION
    g = chainrule.func.per_sample_grad(make_model(chainrule), chainrule.tensor(x, dtype=chainrule.float64))
    return g["0.weight"].reshape(len(x), 5), g["2.weight"].reshape(len(x), 5)
    ### END SOLUTION

G1, G2 = per_sample_matrices(features)
print(G1.shape, G2.shape)

# %% nbgrader={"grade": true, "grade_id": "l4_ex3_per_sample_matrices_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_per_sample_matrices(per_sample_matrices, features)
### BEGIN HIDDEN TESTS
checks.check_per_sample_matrices(per_sample_matrices, problems.lesson4_features(7))
checks.check_per_sample_matrices(per_sample_matrices, problems.lesson4_features(1))
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 (API) — a training loop by hand
#
# Write `train_by_hand(steps, lr)`: build the model with `make_model(chainrule)`, and run `steps`
# steps of plain SGD on `MSELoss()(model(X), Y)` with `X = features`, `Y = targets` (float64),
# updating every parameter with `p -= lr * p.grad` under `chainrule.no_grad()` — no optimizer
# object. Return `{name: tensor}` from `model.named_parameters()`.

# %% nbgrader={"grade": false, "grade_id": "l4_ex4_train_by_hand", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_by_hand(steps, lr):
    """Weights after `steps` manual SGD steps, as {name: tensor}."""
    ### BEGIN SOLUTION
    model = make_model(chainrule)
    X = chainrule.tensor(features, dtype=chainrule.float64)
    Y = chainrule.tensor(targets, dtype=chainrule.float64)
    for _ in range(steps):
        model.zero_grad()
        chainrule.nn.MSELoss()(model(X), Y).backward()
        with chainrule.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
    return dict(model.named_parameters())
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l4_ex4_train_by_hand_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_training(train_by_hand, steps=5, lr=0.5)
### BEGIN HIDDEN TESTS
checks.check_training(train_by_hand, steps=1, lr=0.1)
checks.check_training(train_by_hand, steps=12, lr=0.3)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 5 (mechanism) — a batching rule of your own
#
# `W @ x` takes a matrix `W` of shape `(out, in)` and one vector `x` of length `in`. Under
# `vmap(lambda x: W @ x)(xs)`, the product meets the physical batch `xs`, with the batch on axis
# `batch_dim`: `xs` is `(N, in)` when `batch_dim == 0` and `(in, N)` when `batch_dim == 1`.
#
# Write its batching rule, `matvec_batch_rule(W, xs, batch_dim)`, with chainrule tensors. Return
# `(ys, out_batch_dim)`: `ys` holds the N products $W x_n$, stacked along axis `out_batch_dim` of `ys`.
# One product of two matrices for the whole batch, no loop over samples. (With the vectors as the
# rows of a matrix, or as its columns: which matrix product has $W x_n$ as its row $n$, or as its
# column $n$?) The test puts your rule inside chainrule's `vmap`, in an op `W @ x` whose batching rule
# is yours, and runs `vmap(grad(...))` through it too: its backward pass, $W^\top$ @ grad, calls
# your rule again.

# %% nbgrader={"grade": false, "grade_id": "l4_ex5_matvec_batch_rule", "locked": false, "schema_version": 3, "solution": true, "task": false}
def matvec_batch_rule(W, xs, batch_dim):
    """(ys, out_batch_dim): W @ x for every vector x of xs, whose batch is on axis batch_dim."""
    ### BEGIN SOLUTION
    if batch_dim == 0:
        return xs @ W.T, 0      # row n: x_nᵀ Wᵀ = (W x_n)ᵀ
    return W @ xs, 1            # column n: W x_n
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l4_ex5_matvec_batch_rule_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_matvec_batch_rule(matvec_batch_rule, n=4, n_in=3, n_out=3)
### BEGIN HIDDEN TESTS
checks.check_matvec_batch_rule(matvec_batch_rule, n=1000, n_in=1, n_out=5, seed=1)
checks.check_matvec_batch_rule(matvec_batch_rule, n=7, n_in=5, n_out=5, seed=2)
checks.check_matvec_batch_rule(matvec_batch_rule, n=1, n_in=2, n_out=3, seed=3)
### END HIDDEN TESTS
