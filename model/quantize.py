"""Row-wise symmetric quantization of the frozen GloVe rows: int8, or 4-bit codes packed two per byte.

The frozen rows are most of a model's bytes (400k words x 50 floats = 80 MB),
and they never change after initialisation, so they are quantized once,
before training: dev scoring during training sees exactly the values the
export serves, and PyTorch and ONNX Runtime dequantize them with the same
float ops.

Each row gets one float scale, `max |x| / L` with L = 127 (int8) or 7 (4 bits),
so every value is within half a step (scale / 2) of the original.
4-bit codes are stored offset by 8 (0..15) in uint8, the even dimension in the
high nibble: codes [3, 12, 8, 8] -> bytes [3 * 16 + 12, 8 * 16 + 8] = [60, 136].
Unpacking is `hi = floor(b / 16)`, `lo = b - 16 hi` in float32, exact for
integers below 2^24 and made only of ops every ONNX opset has.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Bits = Literal[8, 4]
LEVELS = {8: 127, 4: 7}
OFFSET4 = 8


def code_width(dim: int, bits: Bits) -> int:
    """Bytes per stored row: `dim` for int8, `ceil(dim / 2)` for 4 bits."""
    return dim if bits == 8 else (dim + 1) // 2


def quantize(vectors: Tensor, bits: Bits) -> tuple[Tensor, Tensor]:
    """(N, D) float -> codes (N, code_width) int8 or uint8, and scales (N, 1) float32."""
    levels = LEVELS[bits]
    scales = vectors.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / levels  # (N, 1)
    codes = torch.round(vectors / scales).clamp(-levels, levels)  # (N, D)
    if bits == 8:
        return codes.to(torch.int8), scales.float()
    if codes.shape[1] % 2:
        codes = torch.cat([codes, torch.zeros_like(codes[:, :1])], dim=1)  # pad to an even width
    codes = (codes + OFFSET4).to(torch.uint8)
    return codes[:, 0::2] * 16 + codes[:, 1::2], scales.float()  # (N, D/2)


def dequantize(codes: Tensor, scales: Tensor, bits: Bits, dim: int) -> Tensor:
    """codes (..., code_width) and scales (..., 1) -> float32 vectors (..., dim)."""
    if bits == 8:
        return codes.to(torch.float32) * scales
    packed = codes.to(torch.float32)
    hi = torch.floor(packed / 16)
    lo = packed - hi * 16
    values = torch.stack([hi, lo], dim=-1).flatten(-2)[..., :dim] - OFFSET4  # (..., dim)
    return values * scales
