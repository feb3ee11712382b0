"""8-byte GDSII reals: round trips, values from the spec, an independent decoder."""
from fractions import Fraction
import struct

import numpy as np
from hypothesis import given, settings, strategies as st

from engine import codec


def spec_decode(b: bytes) -> float:
    """Straight from the manual: value = (-1)^S * (mantissa / 2^56) * 16^(exponent - 64),
    evaluated exactly with fractions and rounded once to float."""
    s = -1 if b[0] & 0x80 else 1
    e = (b[0] & 0x7F) - 64
    mant = 0
    for byte in b[1:8]:
        mant = mant * 256 + byte
    return float(s * Fraction(mant, 2 ** 56) * Fraction(16) ** e)


reals = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda x: x == 0 or 16.0 ** -64 <= abs(x) < 16.0 ** 62)


@settings(max_examples=300, deadline=None)
@given(reals)
def test_round_trip_exact(x):
    b = codec.encode_real8(x)
    assert len(b) == 8
    y = codec.decode_real8(b)
    assert y == x and np.signbit(y) == np.signbit(x) or x == 0
    assert spec_decode(b) == x


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=8, max_size=8))
def test_decoders_agree_with_spec_formula(b):
    want = spec_decode(b)
    assert codec.decode_real8(b) == want
    assert codec.decode_array(b)[0] == want
    out = np.zeros(1)
    codec.decode_kernel(np.frombuffer(b, dtype=np.uint8).copy(), out)
    assert out[0] == want


@settings(max_examples=50, deadline=None)
@given(st.lists(reals, min_size=0, max_size=50))
def test_vectorised_round_trip(xs):
    raw = codec.encode_array(xs)
    assert raw.dtype == np.uint8 and raw.size == 8 * len(xs)
    assert bytes(raw) == b"".join(codec.encode_real8(x) for x in xs)
    assert np.array_equal(codec.decode_array(raw), np.asarray(xs, dtype=np.float64))


def test_known_values_from_spec():
    # the manual's examples: 1 = 41 10 00 .., 0.5 = 40 80 .., -2.5 = C1 28 .., 0 = all zero
    assert codec.encode_real8(1.0) == bytes.fromhex("4110000000000000")
    assert codec.encode_real8(0.5) == bytes.fromhex("4080000000000000")
    assert codec.encode_real8(-2.5) == bytes.fromhex("C128000000000000")
    assert codec.encode_real8(0.0) == bytes(8)
    # UNITS as written by most tools: 1e-3 user units, 1e-9 m
    assert codec.decode_real8(bytes.fromhex("3E4189374BC6A7EF")) == spec_decode(
        bytes.fromhex("3E4189374BC6A7EF"))
    assert abs(codec.decode_real8(bytes.fromhex("3E4189374BC6A7EF")) - 1e-3) < 1e-18
    assert abs(codec.decode_real8(bytes.fromhex("3944B82FA09B5A51")) - 1e-9) < 1e-24
    assert codec.decode_real8(codec.encode_real8(1e-9)) == 1e-9
    assert codec.decode_real8(codec.encode_real8(-1e-3)) == -1e-3


def test_ieee_bits_not_confused():
    # an IEEE double's bytes are not a GDSII real of the same value
    assert codec.decode_real8(struct.pack(">d", 1.0)) != 1.0
