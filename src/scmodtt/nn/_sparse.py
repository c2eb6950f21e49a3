"""A sparse matrix with a fixed pattern and learnable values, multiplied with a dense batch.

MODTT's module encoders and decoders are linear maps whose weight matrices are zero outside the
feature-in-module entries. Written as a sparse product their cost is (entries × ``d_e`` × cells),
however many features and modules there are. PyTorch's own autograd for a sparse matrix returns
the gradient of its values through the dense product ``grad @ input.T`` (features × module width
× cells) before masking it, which costs as much as the dense map; the few lines here compute that
gradient only at the pattern (``torch.sparse.sampled_addmm``). Every kernel used is row-parallel
or per entry, so results do not depend on thread timing (seeded training stays reproducible).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


class SparsePattern(nn.Module):
    """The row/column pattern of an ``(n_rows, n_cols)`` sparse matrix, in CSR form and transposed.

    Parameters
    ----------
    rows, cols
        Coordinates of the entries (1-d, equal length, no coordinate twice), in the order the
        values will be given.
    shape
        ``(n_rows, n_cols)``.

    Notes
    -----
    The pattern is derived from the module membership, so its buffers are not saved with the
    model (``persistent=False``): state dicts stay as they were before the sparse products.

    """

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int]):
        super().__init__()
        rows = torch.as_tensor(rows, dtype=torch.long)
        cols = torch.as_tensor(cols, dtype=torch.long)
        if rows.shape != cols.shape or rows.ndim != 1:
            raise ValueError("`rows` and `cols` must be 1-d and of equal length.")
        n_rows, n_cols = (int(s) for s in shape)
        key = rows * n_cols + cols
        if key.unique().numel() != key.numel():
            raise ValueError("A sparse pattern may name each (row, column) only once.")
        self.shape = (n_rows, n_cols)
        order = torch.argsort(key)
        order_t = torch.argsort(cols * n_rows + rows)
        self._buffer("order", order)  # given order → CSR order
        self._buffer("crow", _compressed(rows[order], n_rows))
        self._buffer("col", cols[order].contiguous())
        # Position in the CSR value array of each value of the transposed CSR.
        position = torch.empty_like(order)
        position[order] = torch.arange(order.numel())
        self._buffer("transposed_order", position[order_t])
        self._buffer("crow_t", _compressed(cols[order_t], n_cols))
        self._buffer("col_t", rows[order_t].contiguous())

    def _buffer(self, name: str, value: torch.Tensor) -> None:
        self.register_buffer(name, value, persistent=False)

    def matmul(self, values: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """``S @ dense`` for the sparse ``S`` with these ``values`` (given order), differentiable.

        ``dense`` is ``(n_cols, k)``; returns ``(n_rows, k)``.
        """
        return _PatternMatmul.apply(values[self.order], dense, self)

    def right_matmul(self, dense: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``dense @ S.T`` for a ``(k, n_cols)`` batch; returns ``(k, n_rows)``."""
        return self.matmul(values, dense.t()).t()


class _PatternMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values: torch.Tensor, dense: torch.Tensor, pattern: SparsePattern):
        ctx.pattern = pattern
        ctx.save_for_backward(values, dense)
        matrix = _csr(pattern.crow, pattern.col, values, pattern.shape)
        return matrix @ dense

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        values, dense = ctx.saved_tensors
        pattern = ctx.pattern
        grad = grad.contiguous()
        grad_values = grad_dense = None
        if ctx.needs_input_grad[0]:
            at_pattern = _csr(pattern.crow, pattern.col, torch.zeros_like(values), pattern.shape)
            grad_values = torch.sparse.sampled_addmm(at_pattern, grad, dense.t(), beta=0.0).values()
        if ctx.needs_input_grad[1]:
            transposed = _csr(
                pattern.crow_t, pattern.col_t, values[pattern.transposed_order], pattern.shape[::-1]
            )
            grad_dense = transposed @ grad
        return grad_values, grad_dense, None


def _csr(crow, col, values, shape) -> torch.Tensor:
    # The pattern is built and checked once in SparsePattern; PyTorch's "CSR is beta" notice is
    # not for users of MODTT, so it is silenced here only.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def _compressed(sorted_rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """CSR row pointers of row indices that are already sorted."""
    counts = torch.bincount(sorted_rows, minlength=n_rows)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])
