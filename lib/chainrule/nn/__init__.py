"""Neural-network building blocks with PyTorch's names: ``Module``, ``Linear``, ``MSELoss``..."""
from . import functional, init
from .modules import (BCEWithLogitsLoss, CrossEntropyLoss, Flatten, Identity, Linear, Module,
                      MSELoss, Parameter, ReLU, Sequential, Sigmoid, Softmax, Tanh)
from ..stand_in import not_covered_in

__all__ = ["functional", "init", "BCEWithLogitsLoss", "CrossEntropyLoss", "Flatten", "Identity",
           "Linear", "Module", "MSELoss", "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax",
           "Tanh"]


__getattr__ = not_covered_in('torch.nn')  # what PyTorch has and chainrule lacks: one clear line
