"""Shared fixtures: the real layouts in ../shared/data and their KLayout reference figures."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CLIPMILL_SHARED_DATA", ROOT.parent / "shared" / "data"))
TESTDATA = ROOT / "tests" / "data"
SKIP_SHARED = f"real layouts not present at {SHARED} (set CLIPMILL_SHARED_DATA)"


def run_boundscheck(tmp_path, module, marker="BOUNDSCHECK DONE", timeout=900):
    """Run ``module.boundscheck_main()`` (a test module of this folder) in a subprocess under
    NUMBA_BOUNDSCHECK=1 with its own numba cache, and assert that it printed marker."""
    import subprocess
    import sys
    here = ROOT / "tests"
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"))
    code = (f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(here)!r}]; "
            f"import {module}; {module}.boundscheck_main()")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=timeout, cwd=str(ROOT))
    out = p.stdout + p.stderr
    assert p.returncode == 0 and marker in out, out[-6000:]
    return out


def manifest() -> list[dict]:
    p = SHARED / "manifest.json"
    if not p.exists():
        return []
    return json.loads(p.read_text())


def shared_gds(include_gz=True) -> list[dict]:
    """Manifest entries of the GDSII files (``entry['path']`` is the absolute path)."""
    out = []
    for e in manifest():
        f = e["file"]
        if f.endswith(".gds") or (include_gz and f.endswith(".gds.gz")):
            e = dict(e, path=str(SHARED / f))
            out.append(e)
    return out


def _params(entries, marks=lambda e: ()):
    """pytest params over manifest entries (id: the file), or one skipped param when the data is
    absent."""
    if not entries:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_SHARED), id="no-shared-data")]
    return [pytest.param(e, id=e["file"], marks=marks(e)) for e in entries]


def layout_params():
    """pytest params over every shared GDSII and OASIS file the manifest lists (gzip copies left
    out), for tests that read them with KLayout; files KLayout cannot read (deliberately invalid
    conformance files) are skipped params that say so."""
    bad = pytest.mark.skip(reason="KLayout cannot read it (manifest: klayout_ok false): "
                                  "no reference")
    return _params([dict(e, path=str(SHARED / e["file"])) for e in manifest()
                    if not e["file"].endswith(".gz")],
                   lambda e: () if e.get("klayout_ok", True) else bad)


def gds_params(include_gz=True):
    """pytest params over the shared GDSII files (one skipped param when the data is absent)."""
    return _params(shared_gds(include_gz))


@pytest.fixture(scope="session")
def shared_dir():
    if not (SHARED / "manifest.json").exists():
        pytest.skip(SKIP_SHARED)
    return SHARED
