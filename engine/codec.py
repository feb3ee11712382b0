"""GDSII 8-byte reals (excess-64 base-16): ``(-1)^s * M / 2^56 * 16^(E - 64)``.

Byte 0: sign bit + 7-bit exponent E; bytes 1..7: 56-bit mantissa M (normalised: M >= 2^52 except
for zero). Every float64 in range is representable exactly (a hex-normalised 56-bit mantissa keeps
at least 53 significant bits), so ``decode(encode(x)) == x`` bit for bit; decoding rounds M to the
nearest float64 once (only mantissas with more than 53 significant bits round).

Three forms: scalar Python (``decode_real8``/``encode_real8``), vectorised numpy over arrays of
8-byte records (``decode_array``/``encode_array``) and a numba kernel helper (``real8_at``) that
decodes in place from the mapped file.
"""
from __future__ import annotations

import math

import numpy as np

from engine.jit import jit

_MANT = (1 << 56) - 1


def decode_real8(b: bytes) -> float:
    """8 bytes -> float."""
    v = int.from_bytes(b[:8], "big")
    e = (v >> 56) & 0x7F
    m = v & _MANT
    x = math.ldexp(float(m), 4 * (e - 64) - 56)
    return -x if (v >> 63) else x


def encode_real8(x: float) -> bytes:
    """float -> 8 bytes (exact for every finite float64 with 16^-65 <= |x| < 16^63; smaller
    magnitudes become 0, larger ones raise ValueError)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{x} cannot be stored as a GDSII real")
    if x == 0.0:
        return bytes(8)
    sign = 0x80 if x < 0 else 0
    m, e = math.frexp(abs(x))          # |x| = m * 2^e, 0.5 <= m < 1
    E = -((-e) // 4)                   # ceil(e / 4): m * 2^(e - 4E) lies in [1/16, 1)
    mant = int(math.ldexp(m, e - 4 * E + 56))
    if E + 64 > 127:
        raise ValueError(f"{x} is too large for a GDSII real")
    if E + 64 < 0:
        return bytes(8)
    return bytes([sign | (E + 64)]) + mant.to_bytes(7, "big")


def decode_array(raw) -> np.ndarray:
    """Vectorised decode: ``raw`` is bytes or a uint8 array of 8*n bytes -> float64[n]."""
    v = np.frombuffer(bytes(raw) if not isinstance(raw, np.ndarray) else raw.tobytes(), dtype=">u8")
    v = v.astype(np.uint64)
    e = ((v >> np.uint64(56)) & np.uint64(0x7F)).astype(np.int64)
    m = (v & np.uint64(_MANT)).astype(np.float64)   # correctly rounded uint64 -> float64
    x = np.ldexp(m, (4 * (e - 64) - 56).astype(np.int32))
    return np.where((v >> np.uint64(63)) != 0, -x, x)


def encode_array(x) -> np.ndarray:
    """Vectorised encode: float64[n] -> uint8[8n] (exact; out-of-range as encode_real8)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise ValueError("non-finite value cannot be stored as a GDSII real")
    m, e = np.frexp(np.abs(x))
    E = -((-e) // 4)
    if np.any((E + 64 > 127) & (x != 0)):
        raise ValueError("value too large for a GDSII real")
    mant = np.ldexp(m, (e - 4 * E + 56).astype(np.int32)).astype(np.uint64)
    zero = (x == 0) | (E + 64 < 0)
    v = (mant | ((E + 64).astype(np.uint64) << np.uint64(56))
         | (np.signbit(x).astype(np.uint64) << np.uint64(63)))
    v[zero] = 0
    return v.astype(">u8").view(np.uint8)


@jit
def real8_at(buf, pos):
    """Decode the 8-byte real at ``buf[pos:pos+8]`` (uint8 array; caller checked the bounds)."""
    b0 = np.int64(buf[pos])
    m = np.uint64(0)
    for i in range(1, 8):
        m = (m << np.uint64(8)) | np.uint64(buf[pos + i])
    x = np.ldexp(np.float64(m), np.int32(4 * ((b0 & 0x7F) - 64) - 56))
    if b0 & 0x80:
        return -x
    return x


@jit
def decode_kernel(buf, out):
    """numba vectorised decode: uint8[8n] -> out float64[n]."""
    for i in range(out.shape[0]):
        out[i] = real8_at(buf, 8 * i)
