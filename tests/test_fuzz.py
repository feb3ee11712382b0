"""Fuzzing the GDSII reader: mutated real and crafted files (bytes flipped, header fields changed,
truncated, records duplicated, deleted, length fields rewritten, bytes inserted) must either load
into a consistent database or raise ClipmillError; nothing else (no other exception, no crash).

Run twice: in-process with hypothesis, and once in a subprocess with NUMBA_BOUNDSCHECK=1 (and a
private NUMBA_CACHE_DIR so bounds-checked kernels do not land in the shared cache) over a fixed
number of seeded mutations; there an IndexError from a kernel means the reader indexed outside an
array on file data it had not validated. The subprocess prints the reproducer file and offset.
"""
from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gdsbytes import simple_library  # noqa: E402

REAL = ["gds2para/nand2.gds", "klayout/gds/t10.gds", "klayout/gds/arefs.gds",
        "klayout/gds/drcSimpleTests_au143d.gds", "gds2para/singleStrip_Detailed.gds",
        "klayout/gds/issue_578_au.gds"]


def bases() -> dict[str, bytes]:
    """Small valid files: crafted ones and small real ones from ../shared/data (when present)."""
    from test_bad_input import every_record_library
    out = {"simple": simple_library().bytes(), "every": every_record_library().bytes()}
    shared = Path(os.environ.get("CLIPMILL_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
    for rel in REAL:
        p = shared / rel
        if p.exists():
            out[rel] = p.read_bytes()
    return out


def split_records(data: bytes) -> list[bytes]:
    """Records of a valid file (anything after ENDLIB kept as one trailing chunk)."""
    out, o = [], 0
    while o + 4 <= len(data):
        (n,) = struct.unpack_from(">H", data, o)
        if n < 4:
            break
        out.append(data[o:o + n])
        o += n
    if o < len(data):
        out.append(data[o:])
    return out


def mutate(data: bytes, ops) -> bytes:
    """Apply ops: record-level ones first (on the record list), then byte-level ones."""
    recs = split_records(data)
    for op in ops:
        kind = op[0]
        if not recs:
            break
        i = int(op[1] * len(recs)) % len(recs)
        if kind == "dup":
            recs.insert(i, recs[i])
        elif kind == "del":
            del recs[i]
        elif kind == "swap":
            j = int(op[2] * len(recs)) % len(recs)
            recs[i], recs[j] = recs[j], recs[i]
        elif kind == "len":
            r = bytearray(recs[i])
            r[0:2] = struct.pack(">H", op[2] & 0xFFFF)
            recs[i] = bytes(r)
        elif kind == "hdr":
            r = bytearray(recs[i])
            if len(r) >= 4:
                r[2 + op[2] % 2] = op[3] & 0xFF  # record type or data type
            recs[i] = bytes(r)
        elif kind == "payload":  # overwrite a data byte (a coordinate, a count, a name ...)
            r = bytearray(recs[i])
            if len(r) > 4:
                k = 4 + int(op[2] * (len(r) - 4)) % (len(r) - 4)
                r[k] = op[3] & 0xFF
            recs[i] = bytes(r)
    out = bytearray(b"".join(recs))
    for op in ops:
        kind = op[0]
        if not out:
            break
        pos = int(op[1] * len(out)) % len(out)
        if kind == "flip":
            out[pos] ^= (op[2] & 0xFF) or 1
        elif kind == "truncate":
            del out[pos:]
        elif kind == "insert":
            out[pos:pos] = bytes(op[2])
    return bytes(out)


def check_consistent(arrays, meta) -> None:
    """A database that loaded must hang together (every index in range)."""
    from engine.database import check_schema, vertex_offsets
    check_schema(arrays)
    C = len(arrays["cell_name_off"]) - 1
    P = len(arrays["poly_vtx_rel"]) - 1
    vo = vertex_offsets(arrays)
    R = len(arrays["ref_cell"])
    L = len(arrays["layer_ld"])
    assert len(arrays["cell_poly_off"]) == C + 1 and len(arrays["cell_ref_off"]) == C + 1
    for name, total in (("cell_poly_off", P), ("cell_ref_off", R),
                        ("vertex offsets", len(arrays["vtx"])),
                        ("cell_name_off", len(arrays["cell_name_data"]))):
        off = vo if name == "vertex offsets" else arrays[name]
        assert off[0] == 0 and off[-1] == total and np.all(np.diff(off) >= 0), name
    n = np.diff(vo)
    assert np.all((n == 0) | (n >= 3))        # 0: a rectangle, its bbox
    if P:
        assert arrays["poly_layer"].min() >= 0 and arrays["poly_layer"].max() < L
    if R:
        assert arrays["ref_cell"].min() >= 0 and arrays["ref_cell"].max() < C
        X, A = len(arrays["xf_mat"]), len(arrays["aref_cols"])
        assert arrays["ref_xf"].min() >= 0 and arrays["ref_xf"].max() < X
        assert arrays["ref_aref"].min() >= -1 and arrays["ref_aref"].max() < A
        assert np.array_equal(np.flatnonzero(arrays["ref_aref"] >= 0),
                              np.flatnonzero(arrays["ref_kind"] == 1))
        if A:
            assert arrays["aref_cols"].min() >= 1 and arrays["aref_rows"].min() >= 1
    t = arrays["top_cells"]
    assert np.all((t >= 0) & (t < C))
    assert set(meta["counts"]) >= {"boundary", "path", "box", "text", "node", "sref", "aref"}


def try_load(path) -> str:
    """'ok' or 'error'; anything but ClipmillError propagates."""
    from engine import open_layout
    from engine.errors import ClipmillError
    from engine.reader import load_gdsii
    try:
        arrays, meta = load_gdsii(str(path))
    except ClipmillError as e:
        assert e.offset is None or 0 <= e.offset <= os.path.getsize(path), e
        return "error"
    check_consistent(arrays, meta)
    with open_layout(path) as lay:  # index + info on the same file must work too
        info = lay.info
        assert info["cells"] == len(arrays["cell_name_off"]) - 1
    return "ok"


_BASES = None
_TMP = Path(tempfile.mkdtemp(prefix="clipmill_fuzz_"))


def _bases():
    global _BASES
    if _BASES is None:
        _BASES = bases()
    return _BASES


OPS = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("dup"), st.floats(0, 1)),
    st.tuples(st.just("del"), st.floats(0, 1)),
    st.tuples(st.just("swap"), st.floats(0, 1), st.floats(0, 1)),
    st.tuples(st.just("len"), st.floats(0, 1), st.integers(0, 0xFFFF)),
    st.tuples(st.just("hdr"), st.floats(0, 1), st.integers(0, 1), st.integers(0, 255)),
    st.tuples(st.just("payload"), st.floats(0, 1), st.floats(0, 1), st.integers(0, 255)),
)


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(base=st.integers(0, 100), ops=st.lists(OPS, min_size=1, max_size=4))
def test_fuzz_mutations(base, ops):
    names = sorted(_bases())
    name = names[base % len(names)]
    data = mutate(_bases()[name], ops)
    path = _TMP / "mutant.gds"
    path.write_bytes(data)
    try:
        try_load(path)
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001 - the finding, with a reproducer
        keep = _TMP / f"repro_{abs(hash((name, repr(ops)))) % 10**8}.gds"
        keep.write_bytes(data)
        raise AssertionError(f"{type(e).__name__}: {e} on {name} mutated by {ops}; "
                             f"reproducer {keep}") from e


def test_unmutated_bases_load():
    for name, data in _bases().items():
        path = _TMP / "base.gds"
        path.write_bytes(data)
        assert try_load(path) == "ok", name


# -- the same under NUMBA_BOUNDSCHECK=1 -----------------------------------------------------

def boundscheck_main(n: int, seed: int, outdir: str) -> int:
    """Run ``n`` seeded random mutations; print a summary; return 1 on any non-ClipmillError."""
    import numba
    assert numba.config.BOUNDSCHECK, "NUMBA_BOUNDSCHECK=1 was not in effect"
    from engine.jit import jit

    @jit
    def _oob(a, i):
        return a[i]

    try:  # proves that compiled kernels are bounds-checked in this process
        _oob(np.zeros(3), 5)
        print("BOUNDSCHECK NOT EFFECTIVE")
        return 2
    except IndexError:
        pass
    rng = random.Random(seed)
    b = _bases()
    names = sorted(b)
    counts = {"ok": 0, "error": 0}
    bad = 0
    for k in range(n):
        name = names[k % len(names)]
        ops = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(["flip", "truncate", "insert", "dup", "del", "swap", "len", "hdr",
                               "payload", "flip", "payload", "len"])
            if kind == "flip":
                ops.append((kind, rng.random(), rng.randint(1, 255)))
            elif kind == "truncate":
                ops.append((kind, rng.random()))
            elif kind == "insert":
                ops.append((kind, rng.random(), bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 8)))))
            elif kind in ("dup", "del"):
                ops.append((kind, rng.random()))
            elif kind == "swap":
                ops.append((kind, rng.random(), rng.random()))
            elif kind == "len":
                ops.append((kind, rng.random(), rng.randint(0, 0xFFFF)))
            elif kind == "hdr":
                ops.append((kind, rng.random(), rng.randint(0, 1), rng.randint(0, 255)))
            else:
                ops.append((kind, rng.random(), rng.random(), rng.randint(0, 255)))
        data = mutate(b[name], ops)
        path = Path(outdir) / f"mutant_{k}.gds"
        path.write_bytes(data)
        try:
            counts[try_load(path)] += 1
            path.unlink()
        except Exception as e:  # noqa: BLE001
            bad += 1
            print(f"FINDING {type(e).__name__}: {e}\n  base={name} ops={ops!r}\n  reproducer={path}")
            traceback.print_exc(file=sys.stdout)
    print(f"SUMMARY n={n} ok={counts['ok']} clipmill_error={counts['error']} other={bad}")
    return 1 if bad else 0


def test_fuzz_under_boundscheck(tmp_path):
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"),
               PYTHONPATH=os.pathsep.join([str(HERE.parent), str(HERE),
                                           os.environ.get("PYTHONPATH", "")]))
    code = (f"import sys; sys.path[:0] = [{str(HERE.parent)!r}, {str(HERE)!r}]; "
            f"import test_fuzz; sys.exit(test_fuzz.boundscheck_main(300, 7, {str(tmp_path)!r}))")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=600, cwd=str(HERE.parent))
    out = p.stdout + p.stderr
    assert "SUMMARY n=300" in out, out[-4000:]
    assert "IndexError" not in out, out[-6000:]
    assert p.returncode == 0, out[-6000:]
