"""The op library: one unit per op (its IR node, NumPy reference, cell formula, array formula or
the reason it has none, derivative slot and example), and the registry that finds them.

    ops.REGISTRY["Relu"]            the op class (the unit)
    ops.inputs(op)                  the node names it reads, from its declared INPUTS
    ops.activation(module_type)     (op factory, short name) for a torch.nn activation, or None

Adding an op: a class in the family's file with ``@register`` (see base.py for its parts); an
activation a Sequential may hold also names its torch module (``MODULE``).  ir, the reference
interpreter and the emitters dispatch through the registry; tests/test_ops.py runs every unit.
"""
from __future__ import annotations

from .base import (ELEMENTWISE, REGISTRY, ArrayText, Example, Op, PerCellOnly, Ref, inputs,
                   number)
from .elementwise import (Copy, Divide, Elu, Gelu, LeakyRelu, Relu, Sigmoid, Silu, Softplus,
                          Sqrt, Step, Tanh)
from .linear import Concat, Linear, MatMul
from .norm import Normalize, RowMean, RowVar, ScaleShift
from .attention import CausalScores, RowMax, RowSumExp, Softmax
from .select import Largest, LargestIds, PickRow, RowArgmax
from .text import Chars, Lookup, PromptLength, PromptNote, TokenId, WordId, cell_text
from .tokens import CheckedIds, FilledCount, IdsNote, TokenText, checked_id
from .arith import Add, Negate, Over, Reshape, Sub, Times, Transpose
from .reduce import BatchNorm, ColMean, ColSum, LogSoftmax, RowSum
from .conv import AvgPool2d, Conv2d, MaxPool2d, Pad2d
from .minstd import MinstdNext, MinstdStream, Uniform
from .sample import (CumulativeSum, KeptSumExp, KthLargest, MaskedSoftmax, PickId, SampleProbs,
                     TopKMask, ValueAt)
from .sample_blocks import (BlockIds, BlockMass, BlockStart, IdProbs, PickInBlock,
                            RunningFrom)
from .generate import (CausalMatMul, DrawIndex, JoinText, LargestSoftmax, NextInput, RowLargest,
                       RowTopIds, ShiftRows, TableAt)
from .grad import (ColumnDots, ColumnSums, MatMulT, NormalizeGrad, OuterSum, RowsAt, RowVarGrad,
                   Spread)
from .slopes import (EluGrad, GeluGrad, LeakyReluGrad, ReluGrad, SigmoidGrad, SiluGrad,
                     SoftplusGrad, TanhGrad)
from .loss import Mean, MseGrad, MseLoss, PickedNll, SoftmaxXentGrad, TakeRows
from .optim import AdamMoment, AdamStep, MomentumBuffer, SgdStep
from .mathfn import (Cos, Exp, Log, Power, RmsNormalize, RowMeanSquare, Rsqrt, ShownIf, Sin,
                     Where)
from .heads import CausalMask, Gather, ScaledScores, StackRows
from .rotary import Rotary
from .pretokenize import ByteKeys, CharClasses, CodePoints, Pretokenize, Utf8Bytes, Utf8Length
from .bpe import BpeIds, BpeNote, FirstSymbols, MergeSteps, StepTokens, TokenCount

__all__ = [*REGISTRY, "ELEMENTWISE", "REGISTRY", "ArrayText", "Example", "Op", "PerCellOnly", "Ref",
           "inputs", "number", "cell_text", "checked_id", "activation", "ACTIVATION_MODULES"]

# torch.nn activation class (module.qualname) -> the op that computes it, from each op's MODULE
_BY_MODULE = {cls.MODULE: cls for cls in REGISTRY.values() if getattr(cls, "MODULE", None)}
ACTIVATION_MODULES = [name.rsplit(".", 1)[1] for name in _BY_MODULE]  # "ReLU", "Tanh", ...


def activation(module_type: type):
    """The op for a torch.nn activation class.

    Args:
        module_type: a module's class, e.g. ``torch.nn.SiLU``.
    Returns:
        (factory(x, module) -> op reading node x, short name for titles), or None when no op
        computes that module.
    """
    cls = _BY_MODULE.get(f"{module_type.__module__}.{module_type.__qualname__}")
    return None if cls is None else (cls.from_module, cls.SHORT)
