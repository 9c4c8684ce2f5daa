# In the style of d2l.ai's "Multilayer Perceptrons", section "Activation Functions": ReLU,
# sigmoid and tanh over a grid and their derivatives by backpropagation (plots aside: their
# values are printed), retain_graph to backpropagate through the same graph again, and
# x.grad.data.zero_() between the derivatives. The grid's step is 1/8, not d2l's 0.1: its points
# are exact in binary, where PyTorch's float32 kernel rounds some tenths to a neighbouring float.
import torch

x = torch.arange(-8.0, 8.0, 0.125, requires_grad=True)
print(x.shape, x[:3], x[-3:])
y = torch.relu(x)
print(y[60:70])
y.backward(torch.ones_like(x), retain_graph=True)
print(x.grad[60:70])
print(x.grad.sum())

y = torch.sigmoid(x)
print(y[::16])
x.grad.data.zero_()
y.backward(torch.ones_like(x), retain_graph=True)
print(x.grad[::16])
print(x.grad.max(), x.grad.argmax())

y = torch.tanh(x)
print(y[::16])
x.grad.data.zero_()
y.backward(torch.ones_like(x), retain_graph=True)
print(x.grad[::16])
print(x.grad.max(), x.grad.argmax())

y.backward(torch.ones_like(x))  # a second pass through the retained graph adds up
print(x.grad[62:66])
try:
    y.backward(torch.ones_like(x))
except RuntimeError as error:
    print(error)
