"""Explicit vector code for the gray rasterizer's pixel loop (numba ``@intrinsic``, LLVM vectors).

The pixel loop of ``engine.raster._finish_gray`` runs two prefix sums along each pixel row (the
other simple polygons' signed areas ``a`` and the rectangles' union coverage ``rowacc``) and turns
them into gray levels. In scalar code the chain of additions bounds it to one pixel per
floating-point add latency (about 3 cycles a pixel on the machines we measure), and LLVM does not
vectorise a prefix sum by itself. ``gray_block`` does LANES pixels at once: both sums as an
in-register scan (log2(LANES) shift-and-add steps) plus the carry from the block before, and each
pixel's gray level by ``engine.raster._pixel``'s rule, every branch computed and one selected. It
returns a mask of the pixels that rule lists for the exact pass; the caller lists those from the
sums it leaves in ``lanes``. A block where ``a`` and the states are all zero (no other polygon:
three blocks in four at layout 20 000, where rectangles dominate) takes a short path: s is the
carry on every pixel and state 0 lists nothing, so only the rectangles' scan and rule 0 are left
(finishing pass 2.82 -> 2.66 ms there).

The sums are float32 (``a`` is float32 already; ``rowacc`` is float64, for the rectangles' sweep
that adds to it, and converted on load), and their rounding (about 1e-6 over a row of a
few thousand pixels) is far below one gray level (1 / 255): a pixel that a threshold (COVER_EPS)
decides the other way gets a value within about 1e-5 of the exact one, or goes to the exact pass.

Every index is the caller's: a block reads and writes columns c .. c + LANES - 1 of each row
array, so the caller runs blocks only while c + LANES <= the row's length (the typing below also
requires C-contiguous 1-d arrays of the right dtypes). Without AVX-512 LLVM splits the 16-lane
vectors into the widest the CPU has.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 16

_F32 = ir.FloatType()
_I8 = ir.IntType(8)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VF = ir.VectorType(_F32, LANES)
_VD = ir.VectorType(ir.DoubleType(), LANES)
_VB = ir.VectorType(_I8, LANES)


def _vec_ptr(context, builder, aty, aval, idx, vty):
    """Pointer to aval[idx : idx + LANES] as one vector of type vty."""
    arr = context.make_array(aty)(context, builder, aval)
    return builder.bitcast(builder.gep(arr.data, [idx]), ir.PointerType(vty))


def _splat(builder, x, vty):
    """The scalar x in every lane of a vector of type vty."""
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
    """ty is a C-contiguous 1-d array of dtype (the blocks address it as flat memory)."""
    return isinstance(ty, types.Array) and ty.ndim == 1 and ty.layout == "C" and ty.dtype == dtype


def _clamp01(builder, v):
    """v clamped to [0, 1] lane by lane."""
    zero = ir.Constant(_VF, [0.0] * LANES)
    one = ir.Constant(_VF, [1.0] * LANES)
    v = builder.select(builder.fcmp_ordered(">", v, zero), v, zero)
    return builder.select(builder.fcmp_ordered("<", v, one), v, one)


def _splat_f(builder, x):
    """The float x (float32 or float64) as float32 in every lane."""
    return _splat(builder, builder.fptrunc(x, _F32) if x.type != _F32 else x, _VF)


def _f0(builder, s, r):
    """Gray fraction of pixels in state 0 (crossed by no other boundary): 1 when s >= 1/2, else
    the rectangles' coverage r clamped to [0, 1]."""
    one = ir.Constant(_VF, [1.0] * LANES)
    return builder.select(builder.fcmp_ordered(">=", s, ir.Constant(_VF, [0.5] * LANES)), one,
                          _clamp01(builder, r))


def _level(builder, f, invb):
    """round(255 f) xor inv as LANES bytes (f in [0, 1])."""
    half = ir.Constant(_VF, [0.5] * LANES)
    g = builder.fadd(builder.fmul(f, ir.Constant(_VF, [255.0] * LANES)), half)
    return builder.xor(builder.trunc(builder.fptosi(g, ir.VectorType(_I32, LANES)), _VB), invb)


def _busy_block(context, builder, tl, l_v, va, vr, stv, pa, pr, pst, po, invb, cs_v, csr_v,
                rs_v, eps_v):
    """gray_block for a block with other polygons' steps or marks (va, vr, stv loaded from pa,
    pr, pst): the sums into lanes, the levels into po, a, rowacc and st cleared; returns
    (listed, several, cs, csr)."""
    zero = ir.Constant(_VF, [0.0] * LANES)
    one = ir.Constant(_VF, [1.0] * LANES)
    sa = _scan(builder, va)
    sr = _scan(builder, builder.fptrunc(vr, _VF))
    builder.store(ir.Constant(_VD, [0.0] * LANES), pr, align=8)
    builder.store(zero, pa, align=4)
    builder.store(ir.Constant(_VB, [0] * LANES), pst, align=1)
    s = builder.fadd(sa, _splat(builder, cs_v, _VF))
    r = builder.fadd(sr, _splat(builder, csr_v, _VF))
    last = ir.Constant(_I32, LANES - 1)
    ncs = builder.fadd(cs_v, builder.extract_element(sa, last))
    ncsr = builder.fadd(csr_v, builder.extract_element(sr, last))
    larr = context.make_array(tl)(context, builder, l_v)
    pl = builder.bitcast(larr.data, ir.PointerType(_VF))
    builder.store(s, pl, align=4)
    builder.store(r, builder.gep(pl, [ir.Constant(_I64, 1)]), align=4)
    # engine.raster._pixel's rule, every branch computed and selected
    eps = _splat_f(builder, eps_v)
    cr = _clamp01(builder, r)
    f1 = builder.fadd(cr, _clamp01(builder, s))
    f1 = builder.select(builder.fcmp_ordered("<", f1, one), f1, one)
    loose = builder.icmp_signed("==", rs_v, ir.Constant(rs_v.type, 0))
    c1 = builder.or_(builder.fcmp_ordered("<=", cr, eps),
                     builder.fcmp_ordered(">=", s, builder.fsub(one, eps)))
    c1 = builder.or_(c1, _splat(builder, loose, ir.VectorType(ir.IntType(1), LANES)))
    full = builder.fcmp_ordered(">=", cr, builder.fsub(one, eps))
    t0 = builder.icmp_unsigned("==", stv, ir.Constant(_VB, [0] * LANES))
    odd = builder.and_(stv, ir.Constant(_VB, [1] * LANES))     # states 1 and 3: areas add up
    t1c = builder.and_(builder.icmp_unsigned("!=", odd, ir.Constant(_VB, [0] * LANES)), c1)
    f = builder.select(t0, _f0(builder, s, r), builder.select(t1c, f1, one))
    listed = builder.and_(builder.not_(builder.or_(t0, t1c)), builder.not_(full))
    builder.store(_level(builder, f, invb), po, align=1)
    several = builder.icmp_unsigned(">=", stv, ir.Constant(_VB, [2] * LANES))
    m = [builder.zext(builder.bitcast(v, ir.IntType(LANES)), _I64) for v in (listed, several)]
    return m[0], m[1], ncs, ncsr


@intrinsic
def gray_block(typingctx, a, rowacc, st, orow, c, lanes, inv, cs, csr, rsweep, eps):
    """gray_block(a, rowacc, st, orow, c, lanes, inv, cs, csr, rsweep, eps) -> (listed, several,
    cs, csr).

    For pixels c .. c + LANES - 1 of one row: s = cs + prefix sum of a, sr = csr + prefix sum of
    rowacc; s into lanes[:LANES], sr into lanes[LANES:] (only where a or st is not all zero:
    elsewhere nothing is listed and lanes is left as it was); each pixel's gray level by
    engine.raster._pixel's rule (state st, cR = sr clamped to [0, 1], COVER_EPS = eps) into
    orow (round(255 f) xor inv), except the pixels that rule lists, whose orow is a value to
    be overwritten. a, rowacc and st are left zero there (so that the caller need not clear
    them before the next window). Returns the mask of the listed pixels and that of the pixels
    whose st was 2 or more (bit j: pixel c + j: the caller lists them, engine.raster._pixel)
    and the sums at the block's last pixel (the next block's cs, csr). a, lanes: float32;
    rowacc: float64 (the rectangles' sweep adds to it; converted here); st, orow: uint8.
    Pixels whose state is 0, 1 or 3 and count2 is not 0 (a complex polygon) are not handled: the
    caller takes its scalar path when there are complex polygons."""
    f32 = types.float32
    if not (_is_row(a, f32) and _is_row(rowacc, types.float64) and _is_row(lanes, f32)
            and _is_row(st, types.uint8) and _is_row(orow, types.uint8)):
        return None
    sig = types.Tuple((types.int64, types.int64, f32, f32))(
        a, rowacc, st, orow, types.intp, lanes, types.intp, f32, f32, types.boolean,
        types.float64)

    def codegen(context, builder, signature, args):
        a_v, r_v, st_v, o_v, c_v, l_v, inv_v, cs_v, csr_v, rs_v, eps_v = args
        ta, tr, tst, to, _, tl = signature.args[:6]
        c_v = context.cast(builder, c_v, signature.args[4], types.intp)
        rs_v = context.cast(builder, rs_v, signature.args[9], types.intp)
        eps_v = context.cast(builder, eps_v, signature.args[10], types.float64)
        pr = _vec_ptr(context, builder, tr, r_v, c_v, _VD)
        pa = _vec_ptr(context, builder, ta, a_v, c_v, _VF)
        pst = _vec_ptr(context, builder, tst, st_v, c_v, _VB)
        po = _vec_ptr(context, builder, to, o_v, c_v, _VB)
        va = builder.load(pa, align=4)
        stv = builder.load(pst, align=1)
        invb = _splat(builder, builder.trunc(inv_v, _I8), _VB)
        res = [cgutils.alloca_once(builder, t) for t in (_I64, _I64, _F32, _F32)]
        # no other polygon's step or mark in the block (most blocks when rectangles dominate):
        # s = cs and state 0 on every pixel, so only the rectangles' sum and rule 0 are left
        busy = builder.or_(builder.fcmp_unordered("!=", va, ir.Constant(_VF, [0.0] * LANES)),
                           builder.icmp_unsigned("!=", stv, ir.Constant(_VB, [0] * LANES)))
        busy = builder.icmp_unsigned("!=", builder.bitcast(busy, ir.IntType(LANES)),
                                     ir.Constant(ir.IntType(LANES), 0))
        with builder.if_else(busy) as (then, quiet):
            with quiet:
                sr = _scan(builder, builder.fptrunc(builder.load(pr, align=8), _VF))
                builder.store(ir.Constant(_VD, [0.0] * LANES), pr, align=8)
                r = builder.fadd(sr, _splat(builder, csr_v, _VF))
                f0 = _f0(builder, _splat(builder, cs_v, _VF), r)
                builder.store(_level(builder, f0, invb), po, align=1)
                ncsr = builder.fadd(csr_v, builder.extract_element(sr, ir.Constant(_I32,
                                                                                   LANES - 1)))
                for p, v in zip(res, (ir.Constant(_I64, 0), ir.Constant(_I64, 0), cs_v, ncsr)):
                    builder.store(v, p)
            with then:
                vr = builder.load(pr, align=8)
                for p, v in zip(res, _busy_block(context, builder, tl, l_v, va, vr, stv, pa, pr,
                                                  pst, po, invb, cs_v, csr_v, rs_v, eps_v)):
                    builder.store(v, p)
        out = [builder.load(p) for p in res]
        return context.make_tuple(builder, signature.return_type, tuple(out))

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


@intrinsic
def prefetch(typingctx, arr, idx):
    """A hint to fetch the cache line of the C-contiguous array arr's flat element idx
    (LLVM's llvm.prefetch, read, keep in all levels): no load, no fault, nothing returned. The
    callers pass an index already checked against the array."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        i = context.cast(builder, args[1], signature.args[1], types.intp)
        p = builder.bitcast(builder.gep(a.data, [i]), ir.PointerType(_I8))
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", fnty=ir.FunctionType(ir.VoidType(), [ir.PointerType(_I8), _I32, _I32,
                                                                   _I32]))
        builder.call(fn, [p, ir.Constant(_I32, 0), ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
        return context.get_dummy_value()

    return types.none(arr, idx), codegen
