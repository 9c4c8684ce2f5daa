"""Neural-network building blocks with PyTorch's names: ``Module``, ``Linear``, ``MSELoss``..."""
from . import functional, init
from .modules import (Identity, Linear, Module, MSELoss, Parameter, ReLU, Sequential, Sigmoid,
                      Tanh)

__all__ = ["functional", "init", "Identity", "Linear", "Module", "MSELoss", "Parameter", "ReLU",
           "Sequential", "Sigmoid", "Tanh"]
