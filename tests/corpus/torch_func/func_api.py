# In the style of the torch.func API reference's examples: grad of grad, grad with argnums and
# has_aux, grad_and_value, vjp and jvp, jacrev and jacfwd, and vmap with in_dims, out_dims,
# nesting, dicts, and randomness.
import torch
from torch.func import grad, grad_and_value, jacfwd, jacrev, jvp, vjp, vmap

torch.set_default_dtype(torch.float64)

x = torch.randn([])
cos_x = grad(lambda x: torch.sin(x))(x)
print("grad(sin) is cos:", torch.abs(cos_x - torch.cos(x)) < 1e-12)
neg_sin_x = grad(grad(lambda x: torch.sin(x)))(x)
print("grad(grad(sin)) is -sin:", torch.abs(neg_sin_x + torch.sin(x)) < 1e-12)

# Batched gradients: vmap over grad.
xs = torch.randn(5)
batched = vmap(grad(lambda x: torch.sin(x)))(xs)
print(batched, torch.cos(xs))


# has_aux: a second output that is returned, not differentiated.
def loss_with_aux(x, y):
    prediction = (x * 3.0).tanh()
    loss = ((prediction - y) ** 2).sum()
    return loss, prediction


x, y = torch.randn(4), torch.randn(4)
grad_x, prediction = grad(loss_with_aux, has_aux=True)(x, y)
print("grad", grad_x)
print("aux", prediction)
grad_x, grad_y = grad(lambda x, y: loss_with_aux(x, y)[0], argnums=(0, 1))(x, y)
print("argnums=(0, 1)", grad_x, grad_y)
grads, (value, aux) = grad_and_value(loss_with_aux, has_aux=True)(x, y)
print("value", value, "equals the loss:", value == loss_with_aux(x, y)[0])

# vjp and jvp.
output, vjp_fn = vjp(torch.sin, x)
print("vjp with ones is cos:", (vjp_fn(torch.ones(4))[0] - x.cos()).abs().max() < 1e-12)
output, jvp_out = jvp(lambda x: x.exp() * 2.0, (x,), (torch.ones(4),))
print("jvp", jvp_out)

# Jacobians by both modes.
jacobian = jacrev(torch.sin)(x)
print("jacrev(sin) is diag(cos):", (jacobian - torch.eye(4) * x.cos()).abs().max() < 1e-12)
print(jacfwd(lambda a, b: a * b.sum(), argnums=1)(x, y))

# vmap: batched dot products, outer products by nesting, and where the batch axis is.
batched_dot = vmap(torch.dot)
a, b = torch.randn(3, 5), torch.randn(3, 5)
print("batched dot", batched_dot(a, b))
outer = vmap(vmap(torch.mul, in_dims=(None, 0)), in_dims=(0, None))
u, v = torch.arange(1.0, 4.0), torch.arange(1.0, 3.0)
print("outer product\n", outer(u, v))
columns = torch.randn(5, 3)
print("in_dims=1", vmap(lambda column: column.sum(), in_dims=1)(columns))
print("out_dims=1\n", vmap(lambda row: row * 2.0, out_dims=1)(a[:, :2]))
print("shared input", vmap(lambda row, w: row @ w, in_dims=(0, None))(a, torch.ones(5)))

# Dicts (any nesting of dicts, lists and tuples) go in and come out.
inputs = {"weights": torch.randn(4, 3), "scale": torch.tensor(2.0)}
scaled = vmap(lambda d: {"scaled": d["weights"] * d["scale"]}, in_dims=({"weights": 0, "scale": None},))(inputs)
print("dict", tuple(scaled["scaled"].shape), (scaled["scaled"] - inputs["weights"] * 2).abs().max() < 1e-12)

# A model written for one sample runs on a batch.
model = torch.nn.Linear(3, 2)
with torch.no_grad():
    print("batched model\n", vmap(model)(torch.randn(4, 3)))

# Randomness: an error by default, one draw for all samples, or one per sample.
try:
    vmap(lambda row: row + torch.rand(3))(torch.zeros(4, 3))
except RuntimeError as error:
    print(error)
same = vmap(lambda row: row + torch.rand(3), randomness="same")(torch.zeros(4, 3))
print("same:", (same == same[0]).all())
different = vmap(lambda row: row + torch.rand(3), randomness="different")(torch.zeros(4, 3))
print("different:", tuple(different.shape), (different == different[0]).all())

# Python control flow on a batched value cannot work: each sample would take its own branch.
try:
    vmap(lambda row: row if row.sum() > 0 else -row)(torch.randn(4, 3))
except RuntimeError as error:
    print(error)
