"""Output formats (engine.formats): every image format read back by an independent reader
(tifffile, Pillow, numpy) equals the array written, metadata travels with each file, and GDSII /
polygon-NPZ clips read back by KLayout and gdstk give the same polygons and areas per layer."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from engine.errors import ClipmillError
from engine.formats import (IMAGE_FORMATS, gds_bytes, make_formatter, read_metadata,
                            read_polynpz, safe_name, sidecar_path, write_gds, write_image)
from engine.polygons import Polygons
from engine.windowspec import WindowSpec

from conftest import SHARED, SKIP_SHARED

RNG = np.random.default_rng(7)
GRAY = (RNG.random((61, 83)) * 256).astype(np.uint8)
BINARY = (RNG.random((61, 83)) > 0.6).astype(np.uint8)
SPEC = WindowSpec("clip 1/a", 1.25, -2.0, 2.91, -0.78)
META = {"pixel_size": 0.02, "layers": [[5, 0], [7, -1]], "cell": "TOP", "source": "/x/demo.gds"}


def read_back(path, fmt):
    """Independent readers: tifffile for TIFF, Pillow for PNG/BMP, numpy for the rest."""
    if fmt == "tiff":
        import tifffile
        return tifffile.imread(path)
    if fmt in ("png", "bmp"):
        from PIL import Image
        with Image.open(path) as im:
            return np.asarray(im)
    if fmt == "raw":
        meta = json.load(open(sidecar_path(path)))
        return np.fromfile(path, dtype=meta["dtype"]).reshape(meta["shape"])
    if fmt == "npy":
        return np.load(path)
    with np.load(path) as z:
        return z["image"]


CASES = [(f, m, c) for f in IMAGE_FORMATS for m in ("binary", "gray")
         for c in {"tiff": (None, "packbits", "deflate"), "npz": (None, "deflate")}.get(f, (None,))]


@pytest.mark.parametrize("fmt,mode,comp", CASES, ids=[f"{f}-{m}-{c}" for f, m, c in CASES])
def test_image_round_trip_with_independent_reader(fmt, mode, comp, tmp_path):
    img = BINARY if mode == "binary" else GRAY
    f = make_formatter(fmt, tmp_path / "out", compression=comp, meta=dict(META, mode=mode))
    out = f(img, SPEC, {"seconds": 0.1})
    path = out["path"]
    assert os.path.basename(path).startswith("clip_1_a.")
    assert out["bytes"] == os.path.getsize(path) + (os.path.getsize(sidecar_path(path))
                                                    if os.path.exists(sidecar_path(path)) else 0)
    got = read_back(path, fmt)
    assert got.shape == img.shape
    if mode == "binary":
        assert np.array_equal(got != 0, img != 0)
    else:
        assert got.dtype == np.uint8 and np.array_equal(got, img)
    meta = read_metadata(path)
    assert meta["window_um"] == [1.25, -2.0, 2.91, -0.78]
    assert meta["window"] == "clip 1/a" and meta["mode"] == mode and meta["cell"] == "TOP"
    assert meta["pixel_size"] == 0.02 and meta["layers"] == [[5, 0], [7, -1]]
    assert meta["source"] == "/x/demo.gds" and meta["shape"] == [61, 83]


def test_tiff_tags_bits_and_compression(tmp_path):
    import tifffile
    for mode, img, bits in (("binary", BINARY, 1), ("gray", GRAY, 8)):
        for comp, tag in (("none", 1), ("packbits", 32773), ("deflate", 8)):
            f = make_formatter("tiff", tmp_path / f"{mode}{comp}", compression=comp,
                               meta=dict(META, mode=mode))
            path = f(img, SPEC, None)["path"]
            with tifffile.TiffFile(path) as t:
                p = t.pages[0]
                assert p.bitspersample == bits and int(p.compression) == tag
                assert json.loads(p.description)["window_um"] == [1.25, -2.0, 2.91, -0.78]
                xres = p.tags["XResolution"].value
                assert xres[0] / xres[1] == pytest.approx(1e4 / 0.02)  # pixels per cm
                assert p.tags["ResolutionUnit"].value == 3


def test_png_bmp_bit_depths(tmp_path):
    from PIL import Image
    for fmt in ("png", "bmp"):
        for mode, img, pil in (("binary", BINARY, "1"), ("gray", GRAY, "L")):
            f = make_formatter(fmt, tmp_path / f"{fmt}{mode}", meta=dict(META, mode=mode))
            with Image.open(f(img, SPEC, None)["path"]) as im:
                assert im.mode == pil
                if fmt == "png":
                    assert json.loads(im.text["clipmill"])["mode"] == mode


def test_no_overwrite_unless_asked(tmp_path):
    f = make_formatter("png", tmp_path, meta=dict(META, mode="gray"))
    p = f(GRAY, SPEC, None)["path"]
    with pytest.raises(ClipmillError, match="output exists"):
        f(GRAY[::-1].copy(), SPEC, None)
    from PIL import Image
    assert np.array_equal(np.asarray(Image.open(p)), GRAY)
    g = make_formatter("png", tmp_path, overwrite=True, meta=dict(META, mode="gray"))
    g(GRAY[::-1].copy(), SPEC, None)
    assert np.array_equal(np.asarray(Image.open(p)), GRAY[::-1])


def test_formatter_pickles_and_bad_arguments(tmp_path):
    import pickle
    f = make_formatter("tiff", tmp_path, compression="deflate")
    g = pickle.loads(pickle.dumps(f))
    assert g.fmt == "tiff" and g.compression == "deflate"
    with pytest.raises(ClipmillError, match="unknown format"):
        make_formatter("jpeg", tmp_path)
    with pytest.raises(ClipmillError, match="compression"):
        make_formatter("png", tmp_path, compression="deflate")
    with pytest.raises(ClipmillError, match="2-D"):
        write_image(tmp_path / "x.png", np.zeros((2, 2, 2), np.uint8), "png")
    assert safe_name("../a b/c") == "a_b_c" and safe_name("...") == "window"


# -- polygons -------------------------------------------------------------------------------------
def klayout_clip(path, window, layers_max=6):
    """Flatten + clip a real layout with KLayout: the independent source of test polygons."""
    import klayout.db as kdb
    ly = kdb.Layout()
    ly.read(str(path))
    top = ly.top_cell()
    box = kdb.Box(*(int(round(v / ly.dbu)) for v in window))
    polys, lays = [], []
    for li in list(ly.layer_indexes())[:layers_max]:
        info = ly.get_info(li)
        reg = kdb.Region(top.begin_shapes_rec(li)) & kdb.Region(box)
        for p in reg.each():
            pts = [(pt.x * ly.dbu, pt.y * ly.dbu) for pt in p.to_simple_polygon().each_point()]
            polys.append(pts)
            lays.append((info.layer, info.datatype))
    return Polygons.from_list(polys, lays), ly.dbu


def klayout_areas(path, cell=None, merged=False):
    """Per-layer area as KLayout reads ``path``: sum of shape areas, or merged (union) area."""
    import klayout.db as kdb
    ly = kdb.Layout()
    ly.read(str(path))
    c = ly.cell(cell) if cell else ly.top_cell()
    out = {}
    for li in ly.layer_indexes():
        info = ly.get_info(li)
        reg = kdb.Region(c.begin_shapes_rec(li))
        a = (reg.area() if merged else sum(p.area() for p in reg.each())) * ly.dbu ** 2
        if a:
            out[(info.layer, info.datatype)] = a
    return out, ly


def klayout_clip_merged_areas(path, window):
    import klayout.db as kdb
    ly = kdb.Layout()
    ly.read(str(path))
    box = kdb.Region(kdb.Box(*(int(round(v / ly.dbu)) for v in window)))
    out = {}
    for li in ly.layer_indexes():
        info = ly.get_info(li)
        a = (kdb.Region(ly.top_cell().begin_shapes_rec(li)) & box).area() * ly.dbu ** 2
        if a:
            out[(info.layer, info.datatype)] = a
    return out


def poly_areas(p: Polygons):
    out = {}
    for a, (l, d) in zip(np.abs(p.areas()), p.layer):
        out[(int(l), int(d))] = out.get((int(l), int(d)), 0.0) + a
    return out


REAL = SHARED / "caravel" / "simple_por.gds"


@pytest.mark.skipif(not REAL.exists(), reason=SKIP_SHARED)
def test_gds_clip_read_back_by_klayout_and_gdstk(tmp_path):
    import gdstk
    window = (3.0, 2.0, 40.0, 35.0)
    polys, dbu = klayout_clip(REAL, window)
    assert len(polys) > 20
    spec = WindowSpec("por_clip", *window)
    f = make_formatter("gds", tmp_path, meta={"source": str(REAL)}, dbu_um=dbu)
    out = f(polys, spec, {"clip": True})
    want = poly_areas(polys)
    got, ly = klayout_areas(out["path"])
    assert [c.name for c in ly.each_cell()] == ["por_clip"]
    assert ly.dbu == pytest.approx(dbu)
    assert set(got) == set(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-12)
    merged, _ = klayout_areas(out["path"], merged=True)
    ref = klayout_clip_merged_areas(REAL, window)
    for k in merged:
        assert merged[k] == pytest.approx(ref[k], rel=1e-12)
    lib = gdstk.read_gds(out["path"])
    assert len(lib.cells[0].polygons) == len(polys)
    meta = read_metadata(out["path"])
    assert meta["window_um"] == list(window) and meta["polygons"] == len(polys)


def test_gds_several_cells_and_vertices_exact(tmp_path):
    import klayout.db as kdb
    a = Polygons.from_list([[(0, 0), (1.5, 0), (1.5, 2), (0, 2)],
                            [(3, 3), (4, 3.25), (3.5, 4.001)]], [(5, 0), (7, 2)])
    b = Polygons.from_list([[(-1, -1), (0, -1), (0, 0)]], [(65535, 65535)])
    path = tmp_path / "two.gds"
    write_gds(path, [("A", a), ("B", b)], dbu_um=0.001)
    ly = kdb.Layout()
    ly.read(str(path))
    assert sorted(c.name for c in ly.each_cell()) == ["A", "B"]
    got = sorted((ly.get_info(li).layer, ly.get_info(li).datatype,
                  tuple((p.x, p.y) for p in s.polygon.each_point_hull()))
                 for li in ly.layer_indexes() for s in ly.cell("A").shapes(li).each())
    assert [g[:2] for g in got] == [(5, 0), (7, 2)]
    assert sorted(got[0][2]) == sorted([(0, 0), (1500, 0), (1500, 2000), (0, 2000)])
    assert sorted(got[1][2]) == sorted([(3000, 3000), (4000, 3250), (3500, 4001)])
    with pytest.raises(ClipmillError, match="two cells"):
        gds_bytes([("A", a), ("A", b)])


def test_polynpz_round_trip(tmp_path):
    polys = Polygons.from_list([[(0, 0), (1, 0), (1, 1)], [(2, 2), (3, 2), (3, 3), (2, 3)]],
                               [(1, 0), (2, 5)])
    f = make_formatter("polynpz", tmp_path, compression="deflate", meta={"source": "s"})
    out = f(None, SPEC, {"polygons": polys})
    with np.load(out["path"]) as z:  # plain numpy reading
        assert np.array_equal(z["xy"], polys.xy) and np.array_equal(z["offsets"], polys.offsets)
        assert np.array_equal(z["layer"], polys.layer)
    back, meta = read_polynpz(out["path"])
    assert meta["window_um"] == [1.25, -2.0, 2.91, -0.78] and meta["polygons"] == 2


def test_gds_single_file_from_worker_parts(tmp_path):
    import klayout.db as kdb
    from engine.formats import merge_gds_parts
    a = Polygons.from_list([[(0, 0), (2, 0), (2, 1)]], [(3, 0)])
    b = Polygons.from_list([[(5, 5), (6, 5), (6, 7), (5, 7)], [(0, 0), (1, 0)]], [(4, 1), (4, 1)])
    f = make_formatter("gds", tmp_path, single="all.gds")
    outs = [f(a, WindowSpec("w a", 0, 0, 2, 1), {}), f(b, WindowSpec("wb", 5, 5, 6, 7), {})]
    path, nbytes = merge_gds_parts(f, outs)
    assert sorted(os.listdir(tmp_path)) == ["all.gds", "all.gds.json"]  # parts removed
    assert nbytes == os.path.getsize(path) + os.path.getsize(path + ".json")
    ly = kdb.Layout()
    ly.read(path)
    assert sorted(c.name for c in ly.each_cell()) == ["w_a", "wb"]
    li = ly.layer(4, 1)
    shapes = list(ly.cell("wb").shapes(li).each())
    assert len(shapes) == 1 and shapes[0].polygon.area() == 2_000_000  # degenerate one dropped
    assert json.load(open(path + ".json"))["cells"]["w_a"]["window_um"] == [0, 0, 2, 1]
    with pytest.raises(ClipmillError, match="output exists"):
        merge_gds_parts(f, outs)


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_encode_image_in_memory(fmt, tmp_path):
    from engine.formats import encode_image
    data, meta = encode_image(GRAY, fmt, meta={"pixel_size": 0.01})
    assert meta["shape"] == [61, 83] and meta["pixel_size"] == 0.01
    path = tmp_path / ("x" + {"tiff": ".tif"}.get(fmt, "." + fmt))
    path.write_bytes(data)
    if fmt == "raw":
        json.dump(meta, open(sidecar_path(path), "w"))
    assert np.array_equal(read_back(path, fmt), GRAY)
    if fmt in ("tiff", "png", "npz"):
        assert read_metadata(path)["pixel_size"] == 0.01
