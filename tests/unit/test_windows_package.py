"""The Windows package build (packaging/windows/build.py) on Linux, offline: a stand-in embeddable Python and a
wheelhouse of hand-made wheels (a Windows and a Linux build of the same binary package, a pure one needed only
on Windows, a source-only one, a CUDA torch) give a complete package folder whose layout, ._pth file, start
files and site-packages are checked. The same build from the real package index: tests/e2e/test_windows_wheels.py.
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

import pytest

from app.main import build_parser as launcher_parser
from GPT_SoVITS.paths import REPO_ROOT
from tests.windows_package import fake_pe, load_build_script, make_embed_zip, make_pure_sdist, make_wheel

build = load_build_script()
NAME = build.package_name(build.project_version())


def _wheelhouse(folder: Path) -> Path:
    init = b"from winbin._core import *\n"
    requires = ('winonly; sys_platform == "win32"', 'linuxonly; sys_platform == "linux"')
    make_wheel(folder, "winbin", "1.0", "cp311-cp311-win_amd64",
               {"winbin/__init__.py": init, "winbin/_core.cp311-win_amd64.pyd": fake_pe()}, requires)
    make_wheel(folder, "winbin", "1.0", "cp311-cp311-manylinux_2_17_x86_64",
               {"winbin/__init__.py": init, "winbin/_core.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"}, requires)
    make_wheel(folder, "winonly", "1.0", "py3-none-any", {"winonly.py": b""})
    make_pure_sdist(folder, "srconly", "1.0")
    return folder


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("winpkg")
    wheelhouse = _wheelhouse(root / "wheelhouse")
    torch = make_wheel(root / "torch", "torch", "2.13.0+cu128", "cp311-cp311-win_amd64",
                       {"torch/__init__.py": b"", "torch/_C.cp311-win_amd64.pyd": fake_pe()})
    requirements = root / "requirements.txt"
    requirements.write_text("torch==2.13.0  # pinned\nwinbin==1.0\nsrconly==1.0\n", encoding="utf-8")
    out = root / "out dir 输出"  # the build machine's path has spaces and Chinese characters too
    rc = build.main(["--python-embed", str(make_embed_zip(root / "python-3.11.9-embed-amd64.zip")), "--out", str(out),
                     "--requirements", str(requirements), "--wheelhouse", str(wheelhouse), "--offline",
                     "--torch-wheel", str(torch), "--archive", "zip", "--quiet"])
    assert rc == 0
    return out / NAME


slow = pytest.mark.slow


@slow
def test_layout(package: Path) -> None:
    assert package.name == f"GPT-SoVITS-Studio-{build.project_version()}-win64"
    assert not package.with_name(package.name + ".partial").exists()
    for rel in ("runtime/python.exe", "runtime/python311.zip", "webui.py", "app/main.py", "GPT_SoVITS/oscompat.py",
                "tools/slice_audio.py", "configs/webui.yaml", "README.md", "README-Windows.txt", "BUILD-INFO.txt",
                "go-webui.bat", "go-webui-en.bat", "go-api.bat"):
        assert (package / rel).is_file(), rel
    assert sorted(p.name for p in (package / "pretrained_models").iterdir()) == ["README.md"]
    for absent in ("tests", "benchmarks", "packaging", ".git", ".ci", "install.sh"):
        assert not (package / absent).exists(), absent
    assert not list(package.glob("**/__pycache__"))
    assert (package / "README-Windows.txt").read_bytes().startswith(b"\xef\xbb\xbf")  # Notepad shows the Chinese
    with zipfile.ZipFile(package.with_name(package.name + ".zip")) as archive:
        names = archive.namelist()
    assert f"{package.name}/go-webui.bat" in names and f"{package.name}/runtime/python.exe" in names


@slow
def test_pth_enables_site_and_the_program_folder(package: Path) -> None:
    data = (package / "runtime" / "python311._pth").read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    entries = [line for line in data.decode("utf-8").splitlines() if line and not line.startswith("#")]
    assert entries == ["python311.zip", ".", "..", "Lib\\site-packages", "import site"]


@slow
def test_site_packages_hold_windows_binaries(package: Path) -> None:
    site = package / "runtime" / "Lib" / "site-packages"
    assert (site / "winbin" / "_core.cp311-win_amd64.pyd").read_bytes()[:2] == b"MZ"
    assert not list(site.rglob("*.so"))  # the Linux build of winbin was not taken
    assert (site / "winonly.py").exists() and not list(site.glob("linuxonly*"))  # markers evaluated for Windows
    assert (site / "srconly.py").exists()  # a source-only requirement, built into a wheel on the way
    assert (site / "torch" / "_C.cp311-win_amd64.pyd").exists() and (site / "torch-2.13.0+cu128.dist-info").is_dir()
    assert not (site / "bin").exists() and not (site / "Scripts").exists()
    assert build.check_site_packages(site) == 2
    info = (package / "BUILD-INFO.txt").read_text(encoding="utf-8")
    assert "winbin==1.0" in info and "torch==2.13.0+cu128" in info and "torch-2.13.0+cu128-cp311" in info
    assert str(package.parent.parent) not in info  # nothing of the build machine's paths


def _bat(package: Path, name: str) -> str:
    data = (package / name).read_bytes()
    assert data.isascii() and b"\n" not in data.replace(b"\r\n", b"")  # ASCII, CRLF
    return data.decode("ascii")


@slow
@pytest.mark.parametrize("name", ["go-webui.bat", "go-webui-en.bat", "go-api.bat"])
def test_start_files_use_quoted_paths_relative_to_themselves(package: Path, name: str) -> None:
    text = _bat(package, name)
    assert "chcp 65001" in text and 'pushd "%~dp0"' in text and '"%~dp0runtime\\python.exe" -X utf8' in text
    assert not re.search(r"[A-Za-z]:\\", text) and str(package.parent) not in text  # nothing of the build machine
    uses = [(line, m.start()) for line in text.splitlines() for m in re.finditer(r"%~dp0", line)]
    assert len(uses) >= 3
    for line, at in uses:  # every path built from the .bat's folder is inside double quotes
        assert line[:at].count('"') % 2 == 1 and line.count('"') % 2 == 0, line


@slow
@pytest.mark.parametrize(("name", "language"), [("go-webui.bat", None), ("go-webui-en.bat", "en_US")])
def test_launcher_options_are_ones_the_launcher_takes(package: Path, name: str, language: str | None) -> None:
    line = next(line for line in _bat(package, name).splitlines() if 'webui.py"' in line)
    options = line.split('webui.py"', 1)[1].replace("%*", "").split()
    args = launcher_parser().parse_args(options)
    assert args.open_browser and args.lang == language  # None: the launcher follows the Windows language
    api = _bat(package, "go-api.bat")
    assert "-m app.api %*" in api and 'if "%~1"=="" goto usage' in api


def test_packaging_folder_does_not_shadow_the_packaging_library() -> None:
    import packaging.version

    assert not (REPO_ROOT / "packaging" / "__init__.py").exists()
    assert Path(packaging.version.__file__).parent.parent != REPO_ROOT


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert build.main([*argv, "--quiet"]) == 1
    return capsys.readouterr().err


def test_clear_errors_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "out")]
    assert "no such file" in _error(capsys, ["--python-embed", str(tmp_path / "missing.zip"), *out])
    assert "must be a local file" in _error(capsys, ["--python-embed", "https://example.invalid/p.zip", "--offline",
                                                     *out])
    x86 = make_embed_zip(tmp_path / "python-3.11.9-embed-win32.zip", machine=0x14C)
    assert "32-bit x86 (win32)" in _error(capsys, ["--python-embed", str(x86), *out])
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("python.exe", fake_pe())
    assert "not a Windows embeddable Python" in _error(capsys, ["--python-embed", str(other), *out])
    embed = str(make_embed_zip(tmp_path / "python-3.11.9-embed-amd64.zip"))
    wrong_torch = make_wheel(tmp_path, "torch", "2.9.0", "cp311-cp311-win_amd64", {"torch/__init__.py": b""})
    assert "pins torch==2.13.0" in _error(capsys, ["--python-embed", embed, "--torch-wheel", str(wrong_torch), *out])
    assert not (tmp_path / "out" / NAME).exists()


def test_7z_without_7_zip_is_refused_up_front(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build.shutil, "which", lambda _name: None)
    monkeypatch.setitem(sys.modules, "py7zr", None)  # not importable
    embed = str(make_embed_zip(tmp_path / "python-3.11.9-embed-amd64.zip"))
    assert "needs 7-Zip" in _error(capsys, ["--python-embed", embed, "--out", str(tmp_path / "out"), "--archive", "7z"])
    assert not (tmp_path / "out" / f"{NAME}.partial").exists()  # refused before any work


@slow
def test_missing_wheels_offline_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("nosuchpackage-for-windows==1.0\n", encoding="utf-8")
    err = _error(capsys, ["--python-embed", str(make_embed_zip(tmp_path / "python-3.11.9-embed-amd64.zip")),
                          "--out", str(tmp_path / "out"), "--requirements", str(requirements), "--offline",
                          "--wheelhouse", str(tmp_path / "wheels")])
    assert "nosuchpackage-for-windows" in err and "no win_amd64 wheel" in err
    assert not (tmp_path / "out" / NAME).exists()


@slow
def test_known_source_only_packages_are_built_ahead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Wheels built before resolving (each spares a whole resolution); one already there is not built again, and
    one that cannot be built is only reported (the resolution decides whether it is needed)."""
    wheelhouse = tmp_path / "wheels"
    make_pure_sdist(wheelhouse, "srconly", "1.0")
    make_wheel(wheelhouse, "Already_There", "1.0", "py3-none-any", {"already_there.py": b""})
    opts = build.Options(python_embed="unused", out=tmp_path, wheelhouse=wheelhouse, offline=True, quiet=True)
    wheels = build.WheelSet(opts, build.Embed("3.11.9", tmp_path / "python311._pth"), wheelhouse)
    done = wheels.prebuild(("srconly==1.0", "already.there>=1", "nosuchpackage-for-windows==1.0"))
    assert done == ["srconly==1.0", "already.there>=1"]
    assert [w.name for w in wheelhouse.glob("srconly-*.whl")] == ["srconly-1.0-py3-none-any.whl"]
    assert len(list(wheelhouse.glob("*.whl"))) == 2  # nothing built for the wheel that was there
    assert "nosuchpackage-for-windows==1.0: building it ahead failed" in capsys.readouterr().out


def test_program_files_without_git_match_gits_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """A source archive has no git: the .gitignore-based walk must pick the same files git does."""
    with_git = build.program_files(REPO_ROOT)
    monkeypatch.setattr(build.shutil, "which", lambda _name: None)
    assert build.program_files(REPO_ROOT) == with_git
    assert "webui.py" in with_git and "pretrained_models/README.md" in with_git
    assert not [p for p in with_git if p.startswith(("tests/", "packaging/")) or "__pycache__" in p]


def test_walk_leaves_out_what_gitignore_ignores(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text((REPO_ROOT / ".gitignore").read_text(encoding="utf-8"), encoding="utf-8")
    for rel in ("GPT_SoVITS/a.py", "GPT_SoVITS/__pycache__/a.cpython-311.pyc", "tools/x.py", "tools/asr/models/m.bin",
                "pretrained_models/README.md", "pretrained_models/s1.ckpt", "GPT_SoVITS/text/G2PWModel/g2pw.onnx"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x", encoding="utf-8")
    assert build.program_files(tmp_path) == ["GPT_SoVITS/a.py", "pretrained_models/README.md", "tools/x.py"]
