"""Window-list files and tiling (engine.windows): every form parses, malformed lists fail with the
file and line number, tiles cover the region exactly once (brute force)."""
from __future__ import annotations

import itertools
import random
from fractions import Fraction

import pytest

from engine.errors import ClipmillError
from engine.windows import parse_box, parse_pair, parse_windows, read_windows, tile_region

EXPECTED = [("a", 0.0, 0.0, 10.0, 5.0), ("b", -2.5, 1.0, 2.5, 3.0)]


def boxes(specs):
    return [(w.name, w.x0, w.y0, w.x1, w.y1) for w in specs]


FORMS = {
    "llur-directive-ws": "# clipmill windows LLUR\na 0 0 10 5\n# a comment\n\nb -2.5 1 2.5 3\n",
    "llur-header-csv": "name,x0,y0,x1,y1\na,0,0,10,5\nb,-2.5,1,2.5,3\n",
    "llur-header-reordered": "x1,y1,name,x0,y0\n10,5,a,0,0\n2.5,3,b,-2.5,1\n",
    "llwh-directive-csv": "# clipmill windows LLWH\na, 0, 0, 10, 5\nb, -2.5, 1, 5, 2\n",
    "llwh-header-ws": "name x0 y0 w h\na 0 0 10 5\nb -2.5 1 5 2\n",
    "cwh-directive": "# clipmill windows CWH\na 5 2.5 10 5\nb 0 2 5 2\n",
    "cwh-header-csv-quoted": 'name,cx,cy,w,h\n"a",5,2.5,10,5\n"b",0,2,5,2\n',
}


@pytest.mark.parametrize("text", FORMS.values(), ids=FORMS.keys())
def test_each_form_parses(text, tmp_path):
    p = tmp_path / "w.txt"
    p.write_text(text)
    assert boxes(read_windows(p)) == EXPECTED


def test_fixed_size_many_centres():
    got = parse_windows("# fixed size\n4,2\n0,0\n10 20\nnamed 1 1\n")
    assert boxes(got) == [("w3", -2, -1, 2, 1), ("w4", 8, 19, 12, 21), ("named", -1, 0, 3, 2)]
    # with directive and a header after the size line
    got = parse_windows("# clipmill windows FIXED\n4 2\nname cx cy\nq 0 0\n")
    assert boxes(got) == [("q", -2, -1, 2, 1)]


def test_names_generated_unique_and_units():
    got = parse_windows("x0,y0,x1,y1\n0,0,1,1\n1,1,2,2\n")
    assert [w.name for w in got] == ["w2", "w3"]
    got = parse_windows("# clipmill windows LLUR units=nm\na 0 0 1000 500\n")
    assert boxes(got) == [("a", 0, 0, 1.0, 0.5)]
    got = parse_windows("# clipmill windows LLUR\na 0 0 2000 500\n", units="dbu", dbu_um=0.0005)
    assert boxes(got) == [("a", 0, 0, 1.0, 0.25)]
    with pytest.raises(ClipmillError, match="dbu_um"):
        parse_windows("# clipmill windows LLUR units=dbu\na 0 0 1 1\n")


def test_extra_columns():
    got = parse_windows('name,x0,y0,x1,y1,cell,layers,depth,pixel_size,mode\n'
                        'a,0,0,1,1,TOP,"5/0,7",2,0.01,gray\nb,0,0,1,1,,,,,\n')
    a, b = got
    assert (a.cell, a.layers, a.depth, a.pixel_size, a.mode) == ("TOP", [(5, 0), (7, -1)], 2,
                                                               0.01, "gray")
    assert (b.cell, b.layers, b.depth, b.pixel_size, b.mode) == (None,) * 5


BAD = [
    ("missing column", "name,x0,y0,x1,y1\na,0,0,1,1\nb,0,0,1\n", 3, "expected 5 columns"),
    ("missing column ws", "# clipmill windows LLWH\na 0 0 1\n", 2, "expected 4 numbers"),
    ("text in number", "# clipmill windows CWH\na 0 0 1 1\nb 0 zero 1 1\n", 3,
     "cy is not a number"),
    ("nan", "name x0 y0 x1 y1\na 0 0 nan 1\n", 2, "not finite"),
    ("negative size", "name,x0,y0,w,h\na,0,0,1,1\n\nb,0,0,-1,1\n", 4, "positive"),
    ("inverted LLUR", "# clipmill windows LLUR\na 0 0 1 -1\n", 2, "y1 > y0"),
    ("zero size", "name cx cy w h\na 0 0 0 1\n", 2, "positive"),
    ("fixed negative", "3,-1\n0,0\n", 1, "must be positive"),
    ("duplicate names", "# clipmill windows LLUR\n# c\nx 0 0 1 1\ny 0 0 1 1\nx 1 1 2 2\n", 5,
     "duplicate window name 'x' \\(first on line 3\\)"),
    ("unknown form", "# clipmill windows SQUARE\na 0 0 1 1\n", 1, "unknown window form"),
    ("no form", "a 0 0 1 1\n", 1, "cannot tell the window form"),
    ("bad header", "name,x0,y0,wide,h\na,0,0,1,1\n", 1, "unknown column 'wide'"),
    ("incomplete header", "name,x0,y0,w\na,0,0,1\n", 1, "names no complete form"),
    ("bad mode", "name,x0,y0,x1,y1,mode\na,0,0,1,1,color\n", 2, "mode must be"),
]


@pytest.mark.parametrize("text,line,msg", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_lists_name_file_and_line(text, line, msg, tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ClipmillError, match=msg) as ei:
        read_windows(p)
    assert str(p) in str(ei.value)
    assert f"line {line}:" in str(ei.value)


def test_empty_and_missing_files(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_text("# nothing\n\n")
    with pytest.raises(ClipmillError, match="no windows"):
        read_windows(p)
    with pytest.raises(ClipmillError, match="cannot read"):
        read_windows(tmp_path / "nope.txt")


# -- tiling ---------------------------------------------------------------------------------------
def _exact(v):
    return Fraction(v)  # floats are exact binary fractions: exact arithmetic for the checks


def check_exact_cover(region, tiles):
    """Brute force: pairwise no overlap (positive-area intersection), sum of areas == region
    area exactly, every tile inside the region, and sample points land in exactly one tile."""
    x0, y0, x1, y1 = map(_exact, region)
    total = Fraction(0)
    for t in tiles:
        a, b, c, d = map(_exact, (t.x0, t.y0, t.x1, t.y1))
        assert x0 <= a < c <= x1 and y0 <= b < d <= y1
        total += (c - a) * (d - b)
    for s, t in itertools.combinations(tiles, 2):
        ix = min(s.x1, t.x1) - max(s.x0, t.x0)
        iy = min(s.y1, t.y1) - max(s.y0, t.y0)
        assert not (ix > 0 and iy > 0), (s, t)
    assert total == (x1 - x0) * (y1 - y0)
    rng = random.Random(5)
    for _ in range(300):
        px = region[0] + (region[2] - region[0]) * rng.random()
        py = region[1] + (region[3] - region[1]) * rng.random()
        hits = [t for t in tiles if t.x0 <= px < t.x1 and t.y0 <= py < t.y1]
        assert len(hits) == 1


@pytest.mark.parametrize("region,n", [((0, 0, 10, 5), (3, 2)), ((-1.3, 2.7, 8.1, 9.9), (7, 5)),
                                      ((0, 0, 1, 1), (1, 1)), ((0.1, 0.2, 0.7, 0.3), (3, 11))])
def test_tiles_by_count_cover_exactly_once(region, n):
    tiles = tile_region(region, tiles=n)
    assert len(tiles) == n[0] * n[1]
    check_exact_cover(region, tiles)
    assert len({t.name for t in tiles}) == len(tiles)


@pytest.mark.parametrize("region,size", [((0, 0, 10, 5), (4, 4)), ((0, 0, 10, 10), (2.5, 5)),
                                         ((-3.3, 1.1, 7.7, 2.2), (1.7, 0.3)),
                                         ((0, 0, 1, 1), (3, 3))])
def test_tiles_by_size_clip_to_region(region, size):
    tiles = tile_region(region, tile_size=size)
    check_exact_cover(region, tiles)
    # all but the last column/row have exactly the asked size
    full = [t for t in tiles if t.x1 < region[2] and t.y1 < region[3]]
    for t in full:
        assert t.x1 - t.x0 == pytest.approx(size[0]) and t.y1 - t.y0 == pytest.approx(size[1])


def test_tiles_by_size_unclipped_and_only():
    tiles = tile_region((0, 0, 10, 5), tile_size=(4, 4), clip=False)
    assert len(tiles) == 6
    assert all(t.x1 - t.x0 == 4 and t.y1 - t.y0 == 4 for t in tiles)
    assert max(t.x1 for t in tiles) == 12 and max(t.y1 for t in tiles) == 8
    names = [t.name for t in tiles]
    assert names == ["tile_r0_c0", "tile_r0_c1", "tile_r0_c2", "tile_r1_c0", "tile_r1_c1",
                     "tile_r1_c2"]
    kept = tile_region((0, 0, 10, 5), tile_size=(4, 4), only="tile_r1_c2,tile_r0_c0")
    assert boxes(kept) == [("tile_r0_c0", 0, 0, 4, 4), ("tile_r1_c2", 8, 4, 10, 5)]
    with pytest.raises(ClipmillError, match="unknown tile"):
        tile_region((0, 0, 10, 5), tiles=(2, 2), only=["tile_r5_c0"])
    big = tile_region((0, 0, 1, 1), tiles=(12, 3))
    assert big[-1].name == "tile_r2_c11" and big[0].name == "tile_r0_c00"


def test_tiling_errors_and_pairs():
    with pytest.raises(ClipmillError):
        tile_region((0, 0, -1, 1), tiles=(2, 2))
    with pytest.raises(ClipmillError):
        tile_region((0, 0, 1, 1), tiles=(0, 2))
    with pytest.raises(ClipmillError):
        tile_region((0, 0, 1, 1), tile_size=(-1, 1))
    with pytest.raises(ClipmillError):
        tile_region((0, 0, 1, 1))
    assert parse_pair("4x5", "tiles") == (4, 5) and parse_pair("2.5,3", "size") == (2.5, 3)
    assert parse_box("0,0,10,5") == (0, 0, 10, 5)
    with pytest.raises(ClipmillError):
        parse_box("0,0,10")


from hypothesis import given, settings, strategies as st  # noqa: E402

coord = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
extent = st.floats(0.01, 500, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(x0=coord, y0=coord, w=extent, h=extent, n=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       frac=st.tuples(st.floats(0.3, 1.5), st.floats(0.3, 1.5)), by_size=st.booleans())
def test_tiling_property_exact_cover(x0, y0, w, h, n, frac, by_size):
    region = (x0, y0, x0 + w, y0 + h)
    if region[2] <= region[0] or region[3] <= region[1]:
        return
    if by_size:
        size = (w * frac[0] / 3, h * frac[1] / 3)
        tiles = tile_region(region, tile_size=size)
        assert len(tiles) <= 11 * 11
    else:
        tiles = tile_region(region, tiles=n)
        assert len(tiles) == n[0] * n[1]
    assert len({t.name for t in tiles}) == len(tiles)
    check_exact_cover(region, tiles)


def test_whole_number_of_tiles_has_no_sliver():
    tiles = tile_region((0, 0, 0.3, 0.7), tile_size=(0.1, 0.1))  # 0.3/0.1 = 2.9999999999999996
    assert len(tiles) == 3 * 7
    assert min(t.x1 - t.x0 for t in tiles) == pytest.approx(0.1)
