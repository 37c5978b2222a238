"""Helpers for the Windows-package tests: the build script loaded by path, a stand-in embeddable Python, fake
Windows executables and hand-made wheels. (``packaging/`` has no ``__init__.py`` on purpose: the folder must not
shadow the PyPA ``packaging`` library, so the script cannot be imported as ``packaging.windows.build``.)"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import struct
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

from GPT_SoVITS.paths import REPO_ROOT

BUILD_SCRIPT = REPO_ROOT / "packaging" / "windows" / "build.py"

#: python311._pth as the official 3.11 embeddable zip ships it
OFFICIAL_PTH = "python311.zip\r\n.\r\n\r\n# Uncomment to run site.main() automatically\r\n#import site\r\n"


def load_build_script() -> ModuleType:
    module = sys.modules.get("windows_build")
    if module is None:
        spec = importlib.util.spec_from_file_location("windows_build", BUILD_SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["windows_build"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return module


def fake_pe(machine: int = 0x8664) -> bytes:
    """The start of a Windows executable for ``machine`` (0x8664 x64, 0x14C x86): MZ stub + PE header."""
    head = bytearray(512)
    head[:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, 0x80)
    head[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<H", head, 0x84, machine)
    return bytes(head)


def make_embed_zip(path: Path, machine: int = 0x8664, tag: str = "311") -> Path:
    """A stand-in for python-3.11.9-embed-amd64.zip: the same file names, fake binaries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stdlib = io.BytesIO()
    with zipfile.ZipFile(stdlib, "w") as inner:
        inner.writestr("os.pyc", b"stand-in")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("python.exe", fake_pe(machine))
        archive.writestr("pythonw.exe", fake_pe(machine))
        archive.writestr(f"python{tag}.dll", fake_pe(machine))
        archive.writestr("python3.dll", fake_pe(machine))
        archive.writestr("vcruntime140.dll", fake_pe(machine))
        archive.writestr(f"python{tag}.zip", stdlib.getvalue())
        archive.writestr(f"python{tag}._pth", OFFICIAL_PTH.replace("311", tag))
        archive.writestr("_socket.pyd", fake_pe(machine))
        archive.writestr("LICENSE.txt", "stand-in")
    return path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(folder: Path, name: str, version: str, tag: str, files: dict[str, bytes],
               requires: tuple[str, ...] = ()) -> Path:
    """A wheel file ``name-version-tag.whl`` holding ``files`` and a dist-info with ``requires``."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    pure = tag.endswith("none-any")
    contents = {**files, f"{info}/METADATA": meta.encode(),
                f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {str(pure).lower()}\n"
                                 f"Tag: {tag}\n".encode()}
    record = [_record_line(n, d) for n, d in contents.items()] + [f"{info}/RECORD,,"]
    path = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for n, d in contents.items():
            archive.writestr(n, d)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def make_pure_sdist(folder: Path, name: str, version: str) -> Path:
    """A source-only, pure-Python distribution (setuptools backend), like jieba on PyPI."""
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{name}-{version}"
    files = {
        "pyproject.toml": f'[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
                          f'[project]\nname = "{name}"\nversion = "{version}"\n\n'
                          f'[tool.setuptools]\npy-modules = ["{name}"]\n',
        f"{name}.py": "ANSWER = 42\n",
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    }
    path = folder / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for rel, text in files.items():
            data = text.encode()
            entry = tarfile.TarInfo(f"{base}/{rel}")
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    return path
