"""engine.simd: the gray rasterizer's vector pixel block, checked against numpy's float64 prefix
sums and the scalar rule (engine.raster._pixel, the path tests/test_raster.py checks against
KLayout) on those sums (gray levels, listed pixels, the state masks, the arrays left zero), on
rows whose length is and is not a multiple of LANES; lowest_bit against Python's integers;
prefetch changes nothing; and the scratch buffers the finishing pass leaves zero
(Scratch.zeroed / kept_zero): a reused Scratch gives the same images as a fresh one over a run
of windows of other sizes, with complex polygons, and with the gathered-rectangles buffer too
short (the finishing pass runs again after a new walk), and the buffers whose fill is skipped
are really all zero after each call.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

import engine.raster as R
from engine.jit import kernel, njit
from engine.polygons import Polygons
from engine.simd import LANES, gray_block, lowest_bit, prefetch


@kernel
def _blocks(a, rowacc, st, orow, inv, rsweep, lanes, sums, m1, m2, carry):
    """gray_block over the whole blocks of a row: the sums it leaves in lanes into sums (2, n)
    (NaN where it left lanes as they were), the masks per block into m1 / m2 and the sums it
    returns into carry (2, blocks)."""
    s = np.float32(0.0)
    sr = np.float32(0.0)
    for k in range(a.shape[0] // LANES):
        c = k * LANES
        lanes[:] = np.nan
        m1[k], m2[k], s, sr = gray_block(a, rowacc, st, orow, c, lanes, inv, s, sr, rsweep,
                                         R.COVER_EPS)
        carry[0, k] = s
        carry[1, k] = sr
        for j in range(LANES):
            sums[0, c + j] = lanes[j]
            sums[1, c + j] = lanes[LANES + j]


@njit
def _scalar(s, sr, st, orow, inv, rsweep, fpix):
    """The scalar rule (engine.raster._pixel, the path checked against KLayout) on given sums:
    gray levels into orow, listed pixels into fpix; returns how many."""
    n = s.shape[0]
    cov = np.zeros(n)
    fown = np.zeros(n, np.int32)
    ow = np.zeros(n, np.int32)
    count2 = np.zeros(1, np.int32)
    nf = 0
    for c in range(n):
        nf = R._pixel(c, s[c], sr[c], st[c], ow, count2, 0, False, rsweep, cov, fpix, fown, orow,
                      inv, nf)
    return nf


@kernel
def _low(m):
    return lowest_bit(m)


def _row(rng, n, sparse):
    """A row's a, rowacc and st; sparse: a and st zero outside a third of the blocks (the
    blocks that gray_block takes by its short path: no other polygon there)."""
    a = np.zeros(n, np.float32)
    k = rng.integers(0, n, n // 5)
    a[k] = rng.choice([-1.0, 1.0, 0.25, -0.75, 0.5], k.size)
    r = np.zeros(n)
    k = rng.integers(0, n, n // 3)
    r[k] = rng.choice([-1.0, 1.0, 0.5, 0.0], k.size) + rng.uniform(-0.02, 0.02, k.size)
    st = rng.choice(np.array([0, 0, 0, 1, 2], np.uint8), n)
    if sparse:
        quiet = np.repeat(rng.random(-(-n // LANES)) < 2 / 3, LANES)[:n]
        quiet[:LANES] = False   # the first block busy: the quiet ones start from other sums
        a[quiet] = 0.0
        st[quiet] = 0
        st[0] = 2
    return a, r, st


@pytest.mark.parametrize("n", [LANES, 5 * LANES, 1000, 1003])
@pytest.mark.parametrize("inv", [0, 255])
@pytest.mark.parametrize("rsweep", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_gray_block_against_scalar_rule(n, inv, rsweep, sparse):
    """The block's sums equal numpy's float64 cumsum within 1e-4; its gray levels equal the
    scalar rule's on the float64 sums (within one level where float32 may round a tie the other
    way) and it lists the pixels that rule lists (away from its thresholds); a, rowacc and st
    are left zero on the blocks and untouched past them."""
    rng = np.random.default_rng(n + inv + rsweep + 7 * sparse)
    eps = R.COVER_EPS
    nquiet = 0
    for _ in range(20):
        a, r, st = _row(rng, n, sparse)
        nb = n // LANES
        m = nb * LANES
        ac, rc, stc = a.copy(), r.copy(), st.copy()
        orow = np.full(n, 77, np.uint8)
        sums = np.zeros((2, n), np.float32)
        m1 = np.zeros(nb, np.int64)
        m2 = np.zeros(nb, np.int64)
        carry = np.zeros((2, nb), np.float32)
        _blocks(ac, rc, stc, orow, inv, rsweep, np.zeros(2 * LANES, np.float32), sums, m1, m2,
                carry)
        s = np.cumsum(a[:m].astype(np.float64))
        sr = np.cumsum(r[:m].astype(np.float64))
        ends = np.arange(LANES - 1, m, LANES)
        assert np.abs(carry[0] - s[ends]).max() < 1e-4 and np.abs(carry[1] - sr[ends]).max() < 1e-4
        # lanes hold the sums where the block has other polygons (only those can list pixels)
        busy = np.repeat((a[:m] != 0).reshape(nb, LANES).any(1)
                         | (st[:m] != 0).reshape(nb, LANES).any(1), LANES)
        assert busy.any()
        nquiet += (~busy).sum() // LANES
        assert np.isnan(sums[:, :m][:, ~busy]).all()
        assert np.abs(sums[0, :m][busy] - s[busy]).max() < 1e-4
        assert np.abs(sums[1, :m][busy] - sr[busy]).max() < 1e-4
        want = np.full(m, 77, np.uint8)
        fpix = np.zeros(m, np.int32)
        nf = _scalar(s, sr, st[:m], want, inv, rsweep, fpix)
        listed = np.zeros(m, bool)
        listed[fpix[:nf]] = True
        bits = (m1[:, None] >> np.arange(LANES)) & 1
        got_listed = bits.reshape(-1).astype(bool)
        near = np.zeros(m, bool)
        for v, edges in ((s, (0.5, 1 - eps)), (sr, (0.0, eps, 1 - eps, 1.0))):
            for e in edges:
                near |= np.abs(v - e) < 1e-4
        assert (got_listed[~near] == listed[~near]).all()
        both = ~listed & ~got_listed
        diff = np.abs(orow[:m].astype(int) - want.astype(int))
        assert (diff[both] <= 1).all()
        g = np.where(listed, 0.0, (want.astype(int) ^ inv) / 255.0)
        tie = np.abs((255.0 * g + 0.5) % 1.0 - 0.5) > 0.49
        assert (diff[both & ~near & ~tie] == 0).all()
        assert (m2 == ((st[:m].reshape(nb, LANES) >= 2) << np.arange(LANES)).sum(1)).all()
        assert not ac[:m].any() and not rc[:m].any() and not stc[:m].any()
        assert (ac[m:] == a[m:]).all() and (rc[m:] == r[m:]).all() and (stc[m:] == st[m:]).all()
        assert (orow[m:] == 77).all()
    assert (nquiet > 0) == (sparse and n > LANES)


def test_lowest_bit():
    rng = np.random.default_rng(3)
    for m in list(rng.integers(1, 1 << 62, 200)) + [1, 2, 1 << 15, (1 << 16) - 1, 1 << 62]:
        m = int(m)
        assert _low(m) == (m & -m).bit_length() - 1


@kernel
def _touch(a, idx):
    """prefetch a's flat elements idx (a 2-D array, as _exact's vertices); returns how many."""
    n = 0
    for k in idx:
        prefetch(a, k)
        n += 1
    return n


def test_prefetch_is_only_a_hint():
    """prefetch compiles for a 2-D float array and changes nothing, at the first, last and
    scattered elements."""
    a = np.arange(40.0).reshape(20, 2)
    before = a.copy()
    idx = np.array([0, 39, 7, 20, 1], dtype=np.int64)
    assert _touch(a, idx) == 5
    assert (a == before).all()


def _layout(rng, n, span):
    """n rectangles, slanted quads and (every 7th) bow-ties in a span x span um square."""
    polys = []
    for k in range(n):
        x, y = rng.uniform(0, span, 2)
        w, h = rng.uniform(0.01, 0.2, 2)
        if k % 7 == 3:
            polys.append([(x, y), (x + w, y + h), (x + w, y), (x, y + h)])
        elif k % 3 == 1:
            polys.append([(x, y), (x + w, y), (x + 0.5 * w, y + h), (x - 0.2 * w, y + h)])
        else:
            polys.append([(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
    xy = np.round(np.asarray(polys, float).reshape(-1, 2), 3)
    return Polygons(xy, np.arange(n + 1, dtype=np.int64) * 4, np.zeros((n, 2), np.int32))


@pytest.mark.parametrize("gather", [1, 4096])
def test_reused_scratch_left_zero(monkeypatch, gather):
    """A Scratch reused over windows of other sizes (the buffers shrink, grow and change shape)
    gives the images a fresh one gives; after each gray call the buffers whose next fill is
    skipped hold zeros over the length they were handed back with. gather = 1: the first
    finishing pass overflows its gathered-rectangles buffer and runs again (new walk)."""
    monkeypatch.setattr(R, "GATHER_MIN", gather)
    rng = np.random.default_rng(5)
    sc = R.Scratch()
    windows = [(0, 0, 2, 2), (0.3, 0.1, 1.0, 1.5), (0, 0, 2.5, 2.2), (0.5, 0.5, 0.9, 0.7),
               (0, 0, 2.5, 2.2)]
    for k, win in enumerate(windows):
        p = _layout(rng, 400, 2.5) if k != 3 else _layout(rng, 60, 1.0)
        for mode in ("gray", "binary", "gray"):
            got = R.rasterize(p, win, 0.01, mode=mode, scratch=sc)
            want = R.rasterize(p, win, 0.01, mode=mode, scratch=R.Scratch())
            assert (got == want).all(), (win, mode)
        assert sc._clean, "the gray pass should hand buffers back zero"
        for name, n in sc._clean.items():
            assert not sc._bufs[name][:n].any(), name


@pytest.mark.parametrize("cols", [16, 53, 160])
def test_vector_rows_flips_invert(cols):
    """Rows of 16 pixels and more take the vector blocks (with a scalar tail when the width is
    not a multiple of LANES): flip_x, flip_y and invert give the mirrored / complemented image
    of the plain one, also into a caller's out array, and the image equals KLayout's coverage
    within one level (tests/test_raster.py's reference)."""
    from test_raster import kl_coverage
    rng = np.random.default_rng(cols)
    p = _layout(rng, 300, 2.0)
    win = (0.1, 0.2, 0.1 + cols * 0.01, 1.5)
    sc = R.Scratch()
    a = R.rasterize(p, win, 0.01, mode="gray", scratch=sc)
    assert a.shape == (130, cols)
    assert (R.rasterize(p, win, 0.01, mode="gray", flip_x=True, scratch=sc) == a[:, ::-1]).all()
    assert (R.rasterize(p, win, 0.01, mode="gray", flip_y=True, scratch=sc) == a[::-1]).all()
    assert (R.rasterize(p, win, 0.01, mode="gray", invert=True, scratch=sc) == 255 - a).all()
    out = np.full(a.shape, 7, np.uint8)
    r = R.rasterize(p, win, 0.01, mode="gray", flip_x=True, flip_y=True, out=out, scratch=sc)
    assert r is out and (out == a[::-1, ::-1]).all()
    polys = [np.round(p.xy[p.offsets[k]:p.offsets[k + 1]] * 1000).astype(np.int64)
             for k in range(len(p.offsets) - 1)]
    cov = kl_coverage(polys, (100, 1500), (10, 10), a.shape)
    assert np.abs(a.astype(int) - np.floor(255 * cov + 0.5)).max() <= 1


def test_cache_stamp_follows_imports():
    """Kernels that inline other modules' kernels (engine.simd's intrinsics in engine.raster's
    and this file's, engine.simple's test in engine.raster's _classify) are cached under a
    stamp holding the hashes of the engine modules their file imports, so a change to one of
    those alone recompiles them; engine.simple's own kernels (importing engine.jit only) hold
    jit.py's hash alone."""
    def sha(name):
        with open(os.path.join(os.path.dirname(R.__file__), name), "rb") as f:
            return hashlib.sha256(f.read()).digest()
    for fn, names in ((R._finish_gray, ("simd.py", "simple.py", "jit.py")),
                      (R._classify, ("simd.py", "simple.py")), (_blocks, ("simd.py",))):
        stamp = fn._cache._cache_file._source_stamp
        assert isinstance(stamp, tuple) and all(sha(n) in stamp[1] for n in names)
    from engine.simple import _is_simple
    _is_simple(np.zeros((3, 2)), 0, 3, np.zeros((4, 8)), np.zeros((10, 8), np.int32))
    stamp = _is_simple._cache._cache_file._source_stamp
    assert isinstance(stamp, tuple) and stamp[1] == (sha("jit.py"),)


def test_scratch_get_views():
    """Scratch.get hands back the same view for the same request (no new slicing), a zero fill
    when asked, shorter views of the same memory, a new buffer for a bigger size or another
    dtype; a view handed out by get is no longer taken as zero by zeroed()."""
    sc = R.Scratch()
    a = sc.get("x", 10, np.float64)
    a[:] = 7.0
    b = sc.get("x", 10, np.float64)
    assert b is a and (b == 7.0).all()
    assert (sc.get("x", 10, np.float64, zero=True) == 0.0).all() and (a == 0.0).all()
    short = sc.get("x", 4, np.float64)
    assert short.shape == (4,) and np.shares_memory(short, a)
    big = sc.get("x", 1000, np.float64)
    assert big.shape == (1000,) and not np.shares_memory(big, a)
    other = sc.get("x", 10, np.int32)
    assert other.dtype == np.int32 and other.shape == (10,)
    again = sc.get("x", 10, np.float64)
    assert again.dtype == np.float64 and not np.shares_memory(again, other)
    z = sc.zeroed("z", 8, np.float64)
    sc.kept_zero("z", 8)
    sc.get("z", 8, np.float64)[:] = 3.0     # taken again: zeroed() must fill
    assert (sc.zeroed("z", 8, np.float64) == 0.0).all() and (z == 0.0).all()
