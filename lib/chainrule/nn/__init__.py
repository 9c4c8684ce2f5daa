"""Neural-network building blocks with PyTorch's names: ``Module``, ``Linear``, ``MSELoss``..."""
from . import functional, init
from .modules import (Identity, Linear, Module, MSELoss, Parameter, ReLU, Sequential, Sigmoid,
                      Tanh)
from ..stand_in import not_covered_in

__all__ = ["functional", "init", "Identity", "Linear", "Module", "MSELoss", "Parameter", "ReLU",
           "Sequential", "Sigmoid", "Tanh"]


__getattr__ = not_covered_in('torch.nn')  # what PyTorch has and chainrule lacks: one clear line
