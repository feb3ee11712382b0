"""The command line end to end, in subprocesses (``python -m engine.cli``): help, one-line errors
and exit codes, ``info`` against KLayout, ``index``, ``run`` writing images (equal to the in-memory
rasterization) and GDSII clips (KLayout's areas per layer equal the in-memory explode), ``demo``."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SHARED, SKIP_SHARED

REAL = SHARED / "caravel" / "simple_por.gds"          # Apache-2.0, 16 cells, 459 KB
need_real = pytest.mark.skipif(not REAL.exists(), reason=SKIP_SHARED)


def clipmill(*args, cwd=None, timeout=240):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "engine.cli", *map(str, args)], cwd=cwd or ROOT,
                       capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def in_process(capsys, *args):
    from engine.cli import main
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(err: str, *needles):
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("clipmill: error: ") and "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


def test_help_and_usage():
    rc, out, err = clipmill("--help")
    assert rc == 0 and "examples:" in out and "clipmill demo" in out
    for cmd in ("info", "index", "run", "demo", "synth", "bench"):
        assert cmd in out
    rc, out, err = clipmill("run", "--help")
    assert rc == 0 and "--tile-size" in out and "name,x0,y0,x1,y1" in out
    rc, out, err = clipmill("synth", "--help")  # delegated to engine.synth.add_arguments
    assert rc == 0 and "clipmill synth" in out
    rc, out, err = clipmill("run")  # no FILE
    assert rc == 2 and "usage:" in err
    rc, out, err = clipmill("run", "x.gds", "--format", "jpeg")
    assert rc == 2 and "invalid choice" in err


def test_errors_are_one_line_without_traceback(tmp_path):
    rc, out, err = clipmill("info", tmp_path / "missing.gds")
    assert rc == 1
    one_line_error(err, "missing.gds", "no such file")
    bad = tmp_path / "bad.gds"
    bad.write_bytes(b"\x00\x06\x00\x02\x02\x58" + b"\x00\x10\x01\x02")  # truncated BGNLIB
    rc, out, err = clipmill("info", bad)
    assert rc == 1
    one_line_error(err, "bad.gds")
    rc, out, err = clipmill("--debug", "info", tmp_path / "missing.gds")
    assert rc != 0 and "Traceback" in err


def test_malformed_window_list_names_line(tmp_path):
    wl = tmp_path / "w.csv"
    wl.write_text("name,x0,y0,x1,y1\na,0,0,1,1\nb,0,0,one,1\n")
    rc, out, err = clipmill("run", tmp_path / "whatever.gds", "--windows", wl,
                            "--pixel-size", "0.1", "--out", tmp_path / "o")
    assert rc == 1
    one_line_error(err, "w.csv", "line 3", "x1 is not a number")


@need_real
def test_info_json_matches_klayout(tmp_path, capsys):
    from kref import kbbox_dbu, kcell_names, kload, ktop_cells
    rc, out, err = clipmill("info", REAL, "--json")
    assert rc == 0, err
    info = json.loads(out)
    kl = kload(REAL)
    assert info["dbu_um"] == pytest.approx(kl.dbu, rel=1e-12)
    cells = info["cells"]
    assert (len(cells) if isinstance(cells, list) else cells) == len(kcell_names(kl))
    assert sorted(info["top_cells"]) == ktop_cells(kl)
    bb = [v * kl.dbu for v in kbbox_dbu(kl)]
    assert info["bbox_um"] == pytest.approx(bb, abs=1e-9)
    kl_layers = {(kl.get_info(li).layer, kl.get_info(li).datatype) for li in kl.layer_indexes()}
    assert {tuple(l) for l in info["layers"]} <= kl_layers
    assert info["file_bytes"] == os.path.getsize(REAL)
    from conftest import manifest
    rec = next(e for e in manifest() if e["file"] == "caravel/simple_por.gds")["records"]
    for kind in ("boundary", "path", "box", "text", "node", "sref", "aref"):
        assert info["counts"][kind] == rec.get(kind.upper(), 0), kind
    # the readable form shows the same figures (in-process: main(argv) is the same entry point)
    rc, text, err = in_process(capsys, "info", REAL)
    assert rc == 0, err
    assert "top cells" in text and ktop_cells(kl)[0] in text and "layers (" in text
    assert f"{bb[2] - bb[0]:g} x {bb[3] - bb[1]:g} um" in text


@need_real
def test_index_then_info_on_dbload(tmp_path, capsys):
    db = tmp_path / "por.dbload"
    rc, out, err = clipmill("index", REAL, "-o", db)
    assert rc == 0, err
    assert db.exists() and "wrote" in out
    rc, out, err = clipmill("index", REAL, "-o", db)
    assert rc == 1
    one_line_error(err, "exists")
    rc, out1, err = in_process(capsys, "info", db, "--json")
    assert rc == 0, err
    a = json.loads(out1)
    from kref import kbbox_dbu, kload, ktop_cells
    kl = kload(REAL)
    assert sorted(a["top_cells"]) == ktop_cells(kl)
    assert a["bbox_um"] == pytest.approx([v * kl.dbu for v in kbbox_dbu(kl)], abs=1e-9)
    assert a["dbu_um"] == pytest.approx(kl.dbu, rel=1e-12)
    # run on the saved DBLoad (no rescan) gives the same picture as the GDSII file
    rc, so, se = in_process(capsys, "run", db, "--tile-region", "20,20,23,22", "--tiles", "1x1",
                            "--pixel-size", "0.05", "--format", "npy", "--workers", "0",
                            "--quiet", "--out", tmp_path / "npy")
    assert rc == 0, se
    from engine import open_layout
    with open_layout(REAL) as lay:
        img = lay.rasterize((20, 20, 23, 22), 0.05, mode="binary")
    got = np.load(tmp_path / "npy" / "tile_r0_c0.npy")
    assert np.array_equal(got != 0, img != 0) and got.shape == img.shape


WINDOW = (10.0, 5.0, 16.0, 9.0)


@need_real
def test_run_png_and_tiff_equal_in_memory_raster(tmp_path):
    from PIL import Image
    import tifffile
    from engine import open_layout
    from engine.formats import read_metadata
    out = tmp_path / "png"
    rc, so, se = clipmill("run", REAL, "--tile-region", ",".join(map(str, WINDOW)),
                          "--tiles", "3x2", "--pixel-size", "0.05", "--workers", "2",
                          "--out", out)
    assert rc == 0, se
    assert "6 windows, 6 written, 0 failed" in so
    files = sorted(out.glob("*.png"))
    assert [f.stem for f in files] == [f"tile_r{r}_c{c}" for r in range(2) for c in range(3)]
    rc, so, se = clipmill("run", REAL, "--tile-region", ",".join(map(str, WINDOW)),
                          "--tile-size", "4,4", "--only", "tile_r0_c1", "--mode", "gray",
                          "--layers", "65/20,235", "--pixel-size", "0.05", "--workers", "1",
                          "--format", "tiff", "--compression", "deflate", "--out", tmp_path / "t")
    assert rc == 0, se
    tif = tmp_path / "t" / "tile_r0_c1.tif"
    with open_layout(REAL) as lay:
        for f in files[:3] + files[-1:]:
            meta = read_metadata(f)
            img = lay.rasterize(meta["window_um"], 0.05, mode="binary")
            got = np.asarray(Image.open(f))
            assert got.shape == img.shape
            assert np.array_equal(got != 0, img != 0), f
        meta = read_metadata(tif)
        assert meta["window_um"] == [14.0, 5.0, 16.0, 9.0]
        assert meta["mode"] == "gray" and meta["layers"] == "65/20,235"
        img = lay.rasterize(meta["window_um"], 0.05, mode="gray", layers="65/20,235")
        assert np.array_equal(tifffile.imread(tif), img)
    # the same run again: outputs exist -> every window fails, exit 3, one line per window
    rc, so, se = clipmill("run", REAL, "--tile-region", ",".join(map(str, WINDOW)),
                          "--tiles", "3x2", "--pixel-size", "0.05", "--workers", "2",
                          "--out", out)
    assert rc == 3
    assert "6 failed" in so
    assert se.count("output exists") == 6 and "Traceback" not in se


@need_real
def test_run_gds_clips_match_in_memory_explode(tmp_path, capsys):
    import klayout.db as kdb
    from engine import open_layout
    wl = tmp_path / "w.txt"
    wl.write_text("# clipmill windows CWH\nleft 12 7 4 3\nright 30 20 5 5\n")
    rc, so, se = clipmill("run", REAL, "--windows", wl, "--format", "gds", "--workers", "2",
                          "--out", tmp_path / "g")
    assert rc == 0, se
    # one file with a cell per window (in-process run, no workers)
    rc, so, se = in_process(capsys, "run", REAL, "--windows", wl, "--format", "gds",
                            "--single-file", "all.gds", "--workers", "0", "--out", tmp_path / "s")
    assert rc == 0, se
    assert sorted(os.listdir(tmp_path / "s")) == ["all.gds", "all.gds.json"]
    # unclipped polygon arrays: exactly the in-memory explode(clip=False)
    rc, so, se = in_process(capsys, "run", REAL, "--windows", wl, "--format", "polynpz",
                            "--no-clip", "--workers", "0", "--out", tmp_path / "p")
    assert rc == 0, se
    with open_layout(REAL) as lay:
        ref = lay.explode((10, 5.5, 14, 8.5), clip=False)
        with np.load(tmp_path / "p" / "left.npz") as z:
            assert np.array_equal(z["xy"], ref.xy) and np.array_equal(z["layer"], ref.layer)
            assert np.array_equal(z["offsets"], ref.offsets)
            assert json.loads(str(z["meta"]))["clip"] is False
    with open_layout(REAL) as lay:
        for name, win in (("left", (10, 5.5, 14, 8.5)), ("right", (27.5, 17.5, 32.5, 22.5))):
            polys = lay.explode(win, clip=True)
            want = {}
            for a, (l, d) in zip(np.abs(polys.areas()), polys.layer):
                want[(int(l), int(d))] = want.get((int(l), int(d)), 0.0) + a
            for path, cell in ((tmp_path / "g" / f"{name}.gds", None),
                               (tmp_path / "s" / "all.gds", name)):
                ly = kdb.Layout()
                ly.read(str(path))
                c = ly.cell(cell) if cell else ly.top_cell()
                got = {}
                for li in ly.layer_indexes():
                    i = ly.get_info(li)
                    a = sum(s.polygon.area() for s in c.shapes(li).each()) * ly.dbu ** 2
                    if a:
                        got[(i.layer, i.datatype)] = a
                assert set(got) == set(want) and len(want) > 0
                for k in want:
                    assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-9)


def test_demo_writes_pngs(tmp_path):
    rc, so, se = clipmill("demo", "--out", tmp_path / "demo", "--tiles", "3x2", "--workers",
                          "2", "--quiet")
    if rc == 1 and "demo layout is missing" in se:
        pytest.fail("engine/data/demo.gds is missing")
    assert rc == 0, se
    files = sorted((tmp_path / "demo").glob("*.png"))
    assert len(files) == 6
    assert "6 windows, 6 written, 0 failed" in so
    from PIL import Image
    from engine.formats import read_metadata
    im = Image.open(files[0])
    assert im.size == (500, 500)  # 10 um at 20 nm
    meta = read_metadata(files[0])
    assert meta["pixel_size"] == 0.02 and meta["source"].endswith("demo.gds")
    # rerunnable: the demo overwrites its own outputs
    rc, so, se = clipmill("demo", "--out", tmp_path / "demo", "--tiles", "3x2", "--workers",
                          "1", "--quiet")
    assert rc == 0, se


def test_progress_bar_draws_rate_eta_and_erases():
    import io
    from engine.progress import Progress, fmt_seconds
    buf = io.StringIO()
    with Progress(4, enabled=True, stream=buf, interval=0.0) as bar:
        bar.update()
        bar.update(failed=1)
        text = bar.line()
    assert "2/4" in text and "50%" in text and "windows/s" in text and "1 failed" in text
    assert "ETA" in text and "\r[" in buf.getvalue()
    assert buf.getvalue().endswith("\r")  # erased on close
    quiet = io.StringIO()
    with Progress(3, enabled=False, stream=quiet) as bar:
        bar.update(3)
    assert quiet.getvalue() == ""
    assert fmt_seconds(3725) == "1:02:05" and fmt_seconds(65) == "01:05"


@need_real
def test_run_checks_layers_once_and_reads_dbu_lists(tmp_path, capsys):
    wl = tmp_path / "w.txt"
    wl.write_text("# clipmill windows LLUR units=dbu\na 10000 5000 12000 7000\n")
    rc, so, se = in_process(capsys, "run", REAL, "--windows", wl, "--pixel-size", "0.05",
                            "--layers", "99", "--out", tmp_path / "x")
    assert rc == 1
    one_line_error(se, "unknown layer 99")
    rc, so, se = in_process(capsys, "run", REAL, "--windows", wl, "--pixel-size", "0.05",
                            "--format", "raw", "--workers", "0", "--out", tmp_path / "r")
    assert rc == 0, se
    clash = tmp_path / "clash.csv"
    clash.write_text('name,x0,y0,x1,y1\n"a b",10,5,12,7\na_b,10,5,12,7\n')
    rc, so, se = in_process(capsys, "run", REAL, "--windows", clash, "--pixel-size", "0.05",
                            "--overwrite", "--out", tmp_path / "c")
    assert rc == 1
    one_line_error(se, "would both write 'a_b'")
    meta = json.load(open(tmp_path / "r" / "a.raw.json"))
    assert meta["window_um"] == [10.0, 5.0, 12.0, 7.0] and meta["shape"] == [40, 40]
    assert os.path.getsize(tmp_path / "r" / "a.raw") == 40 * 40
