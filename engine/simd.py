"""Explicit vector code for the gray rasterizer's pixel loop (numba ``@intrinsic``, LLVM vectors).

The pixel loop of ``engine.raster._finish_gray`` runs two prefix sums along each pixel row (the
other simple polygons' signed areas ``a`` and the rectangles' union coverage ``rowacc``) and turns
them into gray levels. In scalar code the chain of additions bounds it to one pixel per
floating-point add latency (about 3 cycles a pixel on the machines we measure), and LLVM does not
vectorise a prefix sum by itself. ``gray_block`` does LANES pixels at once: both sums as an
in-register scan (log2(LANES) shift-and-add steps) plus the carry from the block before, and the
gray level of every pixel that no other polygon's boundary crosses (state 0). It returns a mask of
the pixels whose state is not 0; the caller finishes those from the sums it leaves in ``lanes``.

Float32 throughout: ``a`` is float32 already, and the sums' rounding (about 1e-6 over a row of a
few thousand pixels) is far below one gray level (1 / 255); thresholds that decide a pixel
(COVER_EPS) only ever send a pixel to the exact pass, never to a wrong value.

Every index is the caller's: a block reads and writes columns c .. c + LANES - 1 of each row
array, so the caller runs blocks only while c + LANES <= the row's length (the typing below also
requires C-contiguous 1-d arrays of the right dtypes). Without AVX-512 LLVM splits the 16-lane
vectors into the widest the CPU has.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LANES = 16

_F32 = ir.FloatType()
_I8 = ir.IntType(8)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VF = ir.VectorType(_F32, LANES)
_VB = ir.VectorType(_I8, LANES)


def _vec_ptr(context, builder, aty, aval, idx, vty):
    """Pointer to aval[idx : idx + LANES] as one vector of type vty."""
    arr = context.make_array(aty)(context, builder, aval)
    return builder.bitcast(builder.gep(arr.data, [idx]), ir.PointerType(vty))


def _splat(builder, x, vty):
    undef = ir.Constant(vty, ir.Undefined)
    return builder.shuffle_vector(builder.insert_element(undef, x, ir.Constant(_I32, 0)), undef,
                                  ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _scan(builder, v):
    """Inclusive prefix sum of the lanes of v (lane i: v[0] + ... + v[i])."""
    zero = ir.Constant(_VF, [0.0] * LANES)
    k = 1
    while k < LANES:
        rot = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES),
                                                        [(i - k) % LANES for i in range(LANES)]))
        keep = ir.Constant(ir.VectorType(ir.IntType(1), LANES), [i >= k for i in range(LANES)])
        v = builder.fadd(v, builder.select(keep, rot, zero))
        k *= 2
    return v


def _is_row(ty, dtype):
    return isinstance(ty, types.Array) and ty.ndim == 1 and ty.layout == "C" and ty.dtype == dtype


@intrinsic
def gray_block(typingctx, a, rowacc, st, orow, c, lanes, inv, cs, csr):
    """gray_block(a, rowacc, st, orow, c, lanes, inv, cs, csr) -> (mask, mask2, cs, csr).

    For pixels c .. c + LANES - 1 of one row: s = cs + prefix sum of a, sr = csr + prefix sum of
    rowacc; s into lanes[:LANES], sr into lanes[LANES:]; pixels of state st 0 get the gray level
    of _finish_gray's rule (1 when s >= 1/2, else sr clamped to [0, 1]; round(255 f) xor inv) in
    orow, the others a value to be overwritten. a, rowacc and st are left zero there (so that
    the caller need not clear them before the next window). Returns the masks of the pixels
    whose st was not 0 and of those whose st was 2 or more (bit j: pixel c + j) and the sums at
    the block's last pixel (the next block's cs, csr). a, rowacc, lanes: float32; st, orow:
    uint8."""
    f32 = types.float32
    if not (_is_row(a, f32) and _is_row(rowacc, f32) and _is_row(lanes, f32)
            and _is_row(st, types.uint8) and _is_row(orow, types.uint8)):
        return None
    sig = types.Tuple((types.int64, types.int64, f32, f32))(a, rowacc, st, orow, types.intp, lanes,
                                                   types.intp, f32, f32)

    def codegen(context, builder, signature, args):
        a_v, r_v, st_v, o_v, c_v, l_v, inv_v, cs_v, csr_v = args
        ta, tr, tst, to, _, tl = signature.args[:6]
        c_v = context.cast(builder, c_v, signature.args[4], types.intp)
        zero = ir.Constant(_VF, [0.0] * LANES)
        one = ir.Constant(_VF, [1.0] * LANES)
        half = ir.Constant(_VF, [0.5] * LANES)
        last = ir.Constant(_I32, LANES - 1)
        pr = _vec_ptr(context, builder, tr, r_v, c_v, _VF)
        pa = _vec_ptr(context, builder, ta, a_v, c_v, _VF)
        sa = _scan(builder, builder.load(pa, align=4))
        sr = _scan(builder, builder.load(pr, align=4))
        builder.store(zero, pr, align=4)
        builder.store(zero, pa, align=4)
        s = builder.fadd(sa, _splat(builder, cs_v, _VF))
        r = builder.fadd(sr, _splat(builder, csr_v, _VF))
        ncs = builder.fadd(cs_v, builder.extract_element(sa, last))
        ncsr = builder.fadd(csr_v, builder.extract_element(sr, last))
        larr = context.make_array(tl)(context, builder, l_v)
        pl = builder.bitcast(larr.data, ir.PointerType(_VF))
        builder.store(s, pl, align=4)
        builder.store(r, builder.gep(pl, [ir.Constant(_I64, 1)]), align=4)
        cr = builder.select(builder.fcmp_ordered(">", r, zero), r, zero)
        cr = builder.select(builder.fcmp_ordered("<", cr, one), cr, one)
        f = builder.select(builder.fcmp_ordered(">=", s, half), one, cr)
        g = builder.fadd(builder.fmul(f, ir.Constant(_VF, [255.0] * LANES)), half)
        gb = builder.trunc(builder.fptosi(g, ir.VectorType(_I32, LANES)), _VB)
        gb = builder.xor(gb, _splat(builder, builder.trunc(inv_v, _I8), _VB))
        builder.store(gb, _vec_ptr(context, builder, to, o_v, c_v, _VB), align=1)
        pst = _vec_ptr(context, builder, tst, st_v, c_v, _VB)
        stv = builder.load(pst, align=1)
        builder.store(ir.Constant(_VB, [0] * LANES), pst, align=1)
        m = [builder.zext(builder.bitcast(builder.icmp_unsigned(">=", stv,
                                                                ir.Constant(_VB, [k] * LANES)),
                                          ir.IntType(LANES)), _I64) for k in (1, 2)]
        return context.make_tuple(builder, signature.return_type, (m[0], m[1], ncs, ncsr))

    return sig, codegen


@intrinsic
def lowest_bit(typingctx, m):
    """Index of the lowest set bit of the int64 m (m != 0): LLVM's cttz, one instruction."""
    if not isinstance(m, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = context.cast(builder, args[0], signature.args[0], types.int64)
        return builder.cttz(v, ir.Constant(ir.IntType(1), 1))

    return types.int64(m), codegen
