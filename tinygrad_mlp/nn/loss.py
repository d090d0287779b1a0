"""Floor 4 (nn.loss): the loss functions of ``functional`` as modules holding their settings
(names and keywords as PyTorch's ``nn.*Loss``)."""
from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "BCEWithLogitsLoss", "L1Loss",
           "SmoothL1Loss", "HuberLoss", "BCELoss", "KLDivLoss"]


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


def _register_weight(loss: Module, weight, name: str):
    """``weight`` as a buffer, as PyTorch keeps it (so it is in the loss's state dict)."""
    if isinstance(weight, str):
        raise TypeError(f"{name}: the first argument is weight (a rescaling weight per class or "
                        f"element, as in PyTorch); pass reduction={weight!r} by keyword")
    if weight is not None and not isinstance(weight, Tensor):
        weight = Tensor(weight)  # a list becomes float32, an array keeps its dtype
    loss.register_buffer("weight", weight)


class CrossEntropyLoss(_Loss):
    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(reduction)
        _register_weight(self, weight, "CrossEntropyLoss")
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, self.reduction, self.label_smoothing,
                               weight=self.weight, ignore_index=self.ignore_index)


class NLLLoss(_Loss):
    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        _register_weight(self, weight, "NLLLoss")
        self.ignore_index = ignore_index

    def forward(self, log_probs, target):
        return F.nll_loss(log_probs, target, self.reduction, weight=self.weight,
                          ignore_index=self.ignore_index)


class MSELoss(_Loss):
    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    def forward(self, logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, self.reduction)


class L1Loss(_Loss):
    def forward(self, input, target):
        return F.l1_loss(input, target, self.reduction)


class SmoothL1Loss(_Loss):
    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class HuberLoss(_Loss):
    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, self.reduction, self.delta)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities; ``BCEWithLogitsLoss`` on logits is the stable one."""

    def __init__(self, weight=None, *, reduction: str = "mean"):
        super().__init__(reduction)
        _register_weight(self, weight, "BCELoss")

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class KLDivLoss(_Loss):
    def __init__(self, reduction: str = "mean", log_target: bool = False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, self.reduction, self.log_target)
