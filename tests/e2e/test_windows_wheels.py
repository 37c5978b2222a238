"""The real wheel set of the Windows package, from the package index: every pin of requirements.txt resolves
to a win_amd64/cp311 (or pure) wheel, with Windows' environment markers; source-only pins are built into wheels;
a small real build holds 64-bit Windows extension modules. Needs the package index (skipped, saying so, when it
is unreachable). The resolution runs once per session and is kept in the session's temp folder; its downloads go
through pip's own cache."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from GPT_SoVITS.paths import REPO_ROOT
from tests.windows_package import load_build_script, make_embed_zip

pytestmark = pytest.mark.slow
build = load_build_script()
REQUIREMENTS = REPO_ROOT / "requirements.txt"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    """The pins that apply on Windows (environment markers evaluated for win32)."""
    from packaging.markers import Marker

    pins = {}
    for line in build.requirement_lines(REQUIREMENTS):
        pin, _, marker = line.partition(";")
        windows = {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"}
        if marker.strip() and not Marker(marker.strip()).evaluate(windows):
            continue
        name, _, version = pin.partition("==")
        pins[_canonical(name.strip())] = version.strip()
    return pins


@pytest.fixture(scope="module")
def index_reachable() -> None:
    probe = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "psutil", "--disable-pip-version-check"],
                           capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=120)
    if probe.returncode != 0:
        pytest.skip("the package index is unreachable (pip index versions psutil failed): "
                    + probe.stderr.strip()[-300:])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, index_reachable: None) -> Path:
    root = tmp_path_factory.mktemp("windows_wheels")
    (root / "wheelhouse").mkdir()
    return root


@pytest.fixture(scope="module")
def resolution(workspace: Path) -> tuple[dict, list[tuple[str, str]]]:
    opts = build.Options(python_embed="unused", out=workspace, wheelhouse=workspace / "wheelhouse", quiet=True)
    wheels = build.WheelSet(opts, build.Embed("3.11.9", workspace / "python311._pth"), workspace / "wheelhouse")
    lines = build.requirement_lines(REQUIREMENTS)
    report = wheels.resolve(lines, workspace)
    return report, wheels.check(report, build.torch_pin(lines))


def test_every_pin_has_a_windows_wheel(resolution: tuple[dict, list]) -> None:
    report, _ = resolution
    picked = {_canonical(i["metadata"]["name"]): i for i in report["install"]}
    for name, version in _pins().items():
        assert name in picked, f"{name} is not in the Windows resolution"
        assert picked[name]["metadata"]["version"] == version, name
    for item in report["install"]:
        filename = item["download_info"]["url"].rsplit("/", 1)[-1]
        assert filename.endswith(".whl"), filename
        python, abi, platform = build.wheel_tags(filename)
        assert platform in ("win_amd64", "any") and (abi in ("none", "abi3") or abi.startswith("cp311")), filename
    torch = picked["torch"]["download_info"]["url"].rsplit("/", 1)[-1]
    assert torch == "torch-2.13.0-cp311-cp311-win_amd64.whl"  # PyPI's Windows build of the pin: the CPU one


def test_markers_were_evaluated_for_windows(resolution: tuple[dict, list]) -> None:
    report, _ = resolution
    assert report["environment"]["sys_platform"] == "win32"
    names = {_canonical(i["metadata"]["name"]) for i in report["install"]}
    assert {"colorama", "tzdata"} <= names  # Windows-only dependencies (tqdm/click, pandas)
    assert not {n for n in names if n == "triton" or n.startswith(("nvidia-", "cuda-"))}  # torch's Linux-only ones


def test_source_only_pins_were_built_into_pure_wheels(workspace: Path, resolution: tuple[dict, list]) -> None:
    built = sorted((workspace / "wheelhouse").glob("*.whl"))
    assert any(w.name.startswith("jieba-0.42.1-") for w in built)  # jieba publishes only a source archive
    assert all(build.wheel_tags(w.name)[1:] == ("none", "any") for w in built)
    report, _ = resolution
    jieba = next(i for i in report["install"] if i["metadata"]["name"] == "jieba")
    assert jieba["download_info"]["url"].endswith("jieba-0.42.1-py3-none-any.whl")


def test_a_real_build_holds_64_bit_windows_extension_modules(workspace: Path, resolution: tuple[dict, list]) -> None:
    pins = _pins()
    requirements = workspace / "subset.txt"  # a few real pins: binary (abi3 and cp311) and source-only
    requirements.write_text("".join(f"{n}=={pins[n]}\n" for n in ("psutil", "pyyaml", "jieba")), encoding="utf-8")
    out = workspace / "out"
    assert build.main(["--python-embed", str(make_embed_zip(workspace / "python-3.11.9-embed-amd64.zip")),
                       "--out", str(out), "--requirements", str(requirements), "--wheelhouse",
                       str(workspace / "wheelhouse"), "--quiet"]) == 0
    site = out / build.package_name(build.project_version()) / "runtime" / "Lib" / "site-packages"
    assert build.check_site_packages(site) >= 2  # every .pyd is a 64-bit Windows PE file
    assert list(site.glob("yaml/_yaml.cp311-win_amd64.pyd")) and list(site.glob("psutil/*.pyd"))
    assert (site / "jieba" / "__init__.py").exists() and not list(site.rglob("*.so"))
