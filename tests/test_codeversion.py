"""The code version (redleaf_nb/codeversion.py): code counts, prose does not, and a file's
version covers the local modules it imports."""
from __future__ import annotations

import subprocess

from redleaf_nb import native
from redleaf_nb.codeversion import ROOT, code_version, toolkit_files, uncommitted_changes

CODE = '''
import math

def area(r):
    return math.pi * r * r
'''

PROSE = '''"""A module docstring."""
import math   # a comment


def area(r):
    """A function docstring."""
    # a comment on its own line
    return math.pi * r * r
'''


def test_comments_docstrings_and_blank_lines_are_not_code(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(CODE)
    before = code_version(f)
    f.write_text(PROSE)
    assert code_version(f) == before
    f.write_text(CODE.replace("r * r", "r ** 2"))
    assert code_version(f) != before


def test_a_files_version_covers_the_local_modules_it_imports_and_no_others(tmp_path,
                                                                           monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "user.py").write_text("import numpy\nfrom .helper import k\n")
    (pkg / "helper.py").write_text("k = 1\n")
    (tmp_path / "other.py").write_text("k = 1\n")
    user, other = code_version(pkg / "user.py"), code_version(tmp_path / "other.py")
    (pkg / "helper.py").write_text("k = 22\n")
    assert code_version(pkg / "user.py") != user
    assert code_version(tmp_path / "other.py") == other
    (tmp_path / "other.py").write_text("k = 22\n")
    after = code_version(pkg / "user.py")
    (pkg / "helper.py").write_text('"""Now with a docstring."""\nk = 22  # and a comment\n')
    assert code_version(pkg / "user.py") == after


def test_the_toolkits_version_covers_its_code_and_c_sources_not_tests_or_notebooks():
    files = {f.relative_to(ROOT).parts[0] for f in toolkit_files()}
    assert files == {"redleaf_nb", "devices", "experiments"}
    assert ROOT / "redleaf_nb" / "kernel" / "heap.py" in toolkit_files()
    assert any(f.suffix == ".c" for f in toolkit_files())


def git(root, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root,
                   check=True, capture_output=True)


def test_uncommitted_changes_are_the_toolkit_files_whose_code_changed(tmp_path):
    assert uncommitted_changes(tmp_path) is None            # not a git checkout
    (tmp_path / "redleaf_nb").mkdir()
    (tmp_path / "tests").mkdir()
    lib, test = tmp_path / "redleaf_nb" / "lib.py", tmp_path / "tests" / "test_lib.py"
    lib.write_text(CODE)
    test.write_text(CODE)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "code")
    lib.write_text(PROSE)
    test.write_text(CODE + "x = 1\n")
    assert uncommitted_changes(tmp_path) == []
    lib.write_text(CODE + "x = 1\n")
    (tmp_path / "redleaf_nb" / "new.py").write_text("y = 2\n")
    assert sorted(uncommitted_changes(tmp_path)) == ["redleaf_nb/lib.py", "redleaf_nb/new.py"]


def test_the_c_build_cache_is_keyed_by_the_sources_code_version(tmp_path, monkeypatch):
    monkeypatch.setenv("REDLEAF_NB_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "answer.c"
    source.write_text("int answer(void) { return 42; }\n")
    first = native.build_shared(source)
    assert native.build_shared(source) == first
    source.write_text("int answer(void) { return 43; }\n")
    assert native.build_shared(source) != first
