# In the style of "Jacobians, Hessians, hvp, vhp, and more: composing function transforms":
# a Jacobian row by row with vjp, then with vmap(vjp), jacrev and jacfwd; Hessians three ways;
# batch Jacobians; Hessian-vector products.
from functools import partial

import torch
import torch.nn.functional as F
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vjp, vmap

torch.set_default_dtype(torch.float64)


def predict(weight, bias, x):
    return F.linear(x, weight, bias).tanh()


D = 6
weight = torch.randn(D, D)
bias = torch.randn(D)
x = torch.randn(D)

# Row by row: one vector-Jacobian product per unit vector.
_, vjp_fn = vjp(partial(predict, weight, bias), x)
unit_vectors = torch.eye(D)
jacobian_rows = [vjp_fn(vector)[0] for vector in unit_vectors]
jacobian = torch.stack(jacobian_rows)
print("Jacobian by rows\n", jacobian)

# All rows at once: vmap over the unit vectors.
(ft_jacobian,) = vmap(vjp_fn)(unit_vectors)
print("vmap(vjp) agrees:", (ft_jacobian - jacobian).abs().max() < 1e-12)

ft_jacobian = jacrev(predict, argnums=2)(weight, bias, x)
print("jacrev agrees:", (ft_jacobian - jacobian).abs().max() < 1e-12)

# With respect to the weight and the bias: one block per argument.
ft_jac_weight, ft_jac_bias = jacrev(predict, argnums=(0, 1))(weight, bias, x)
print("blocks", tuple(ft_jac_weight.shape), tuple(ft_jac_bias.shape))
print("d out / d bias is diagonal:", (ft_jac_bias * (1 - unit_vectors)).abs().max() < 1e-12)

# Forward mode gives the same matrix, one Jacobian-vector product per column.
jacfwd_jacobian = jacfwd(predict, argnums=2)(weight, bias, x)
print("jacfwd agrees:", (jacfwd_jacobian - jacobian).abs().max() < 1e-12)


# Hessians of a scalar function, three ways.
def energy(x):
    return (predict(weight, bias, x) ** 2).sum()


hess_api = hessian(energy)(x)
hess_fwdrev = jacfwd(jacrev(energy))(x)
hess_revrev = jacrev(jacrev(energy))(x)
print("Hessian\n", hess_api)
print("three ways agree:", (hess_api - hess_fwdrev).abs().max() < 1e-10, (hess_api - hess_revrev).abs().max() < 1e-10)
print("symmetric:", (hess_api - hess_api.T).abs().max() < 1e-10)

# Batch Jacobians: one Jacobian per input of a batch.
batch_size = 4
xs = torch.randn(batch_size, D)
batch_jacobian = vmap(jacrev(predict, argnums=2), in_dims=(None, None, 0))(weight, bias, xs)
print("batch Jacobian", tuple(batch_jacobian.shape))
print(batch_jacobian[1, :2])
batch_hessian = vmap(hessian(energy))(xs)
print("batch Hessian", tuple(batch_hessian.shape))
print(batch_hessian[2, 0])


# Hessian-vector products: forward over reverse, without building the Hessian.
def hvp(f, primals, tangents):
    return jvp(grad(f), primals, tangents)[1]


def f(x):
    return x.sin().sum()


x = torch.randn(32)
tangent = torch.randn(32)
result = hvp(f, (x,), (tangent,))
print("hvp", result[:5])
print("is -sin(x) * tangent:", (result - (-x.sin()) * tangent).abs().max() < 1e-12)
