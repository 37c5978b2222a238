"""Build the portable Windows package ``GPT-SoVITS-Studio-<version>-win64/``: the studio with its own Python.

    python packaging/windows/build.py --python-embed python-3.11.9-embed-amd64.zip --out dist [--archive 7z]

Runs on any OS with Python >= 3.10 and pip (the CI workflow runs it on Windows, the tests on Linux). Layout::

    GPT-SoVITS-Studio-<version>-win64/
      runtime/                 the official Windows embeddable CPython, site-packages enabled in python3XY._pth
        Lib/site-packages/     the runtime requirements as win_amd64 wheels (pip --platform, wheels only)
      GPT_SoVITS/ app/ tools/ configs/ docs/ webui.py README.md ...    the program
      pretrained_models/README.md                                      (users bring the weights)
      go-webui.bat  go-webui-en.bat  go-api.bat  README-Windows.txt  BUILD-INFO.txt

Requirements published only as source (jieba, distance) are built into wheels here first; that works for
pure-Python ones only, and the build stops naming any other. torch is the CPU wheel of the package index unless
``--torch-index-url`` (e.g. https://download.pytorch.org/whl/cu128) or ``--torch-wheel`` gives an NVIDIA build.
What cannot be fetched (``--offline``, or no network) must be given: the embeddable zip as a file and the wheels
in ``--wheelhouse``. The package is assembled in ``<name>.partial`` and renamed when complete.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import fnmatch
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PIP_FOR_WINDOWS = HERE / "pip_for_windows.py"
LAUNCHERS = ("go-webui.bat", "go-webui-en.bat", "go-api.bat")
#: What of the repository goes into the package (tests, benchmarks, CI and packaging stay out).
PROGRAM = ("GPT_SoVITS", "app", "tools", "configs", "docs", "pretrained_models/README.md", "webui.py", "README.md",
           "requirements.txt", "pyproject.toml", "LICENSE")
PE_MACHINES = {0x8664: "64-bit x64 (amd64)", 0x14C: "32-bit x86 (win32)", 0xAA64: "ARM64"}
PE_AMD64 = 0x8664
NO_DISTRIBUTION = re.compile(r"No matching distribution found for (\S+)")
#: pip's ResolutionImpossible names a dependency with no wheel only by name, below this line …
NO_DISTRIBUTION_IN_CONFLICT = re.compile(r"no matching distributions available for your environment:\s*\n\s*(\S+)")
#: … and its version range where a package depends on it
DEPENDS_ON = re.compile(r"depends on (\S+)")
#: Requirements (as pip's errors name them) that have no Windows wheel on the index, only a pure-Python sdist:
#: built into the wheelhouse before resolving, which spares one whole resolution each (36-60 s on a 2-core
#: machine). Anything else without a Windows wheel is still found and built by the resolution loop; a name the
#: requirements no longer need costs only its build (the wheel is not installed unless pip picks it).
KNOWN_SOURCE_ONLY = ("jieba==0.42.1", "distance>=0.1.3", "oss2", "antlr4-python3-runtime==4.9.*", "crcmod>=1.7")
#: How many of those are built at once: each build is a pip process that spends part of its time waiting for the
#: package index (five one after another took 41 s on a 2-core machine, side by side 19 s).
PARALLEL_BUILDS = 4
UNREACHABLE = ("Failed to establish a new connection", "NewConnectionError", "Temporary failure in name resolution",
               "ProxyError", "Network is unreachable", "Max retries exceeded")


class BuildError(RuntimeError):
    """Something the person building can fix; the message says what and how."""


@dataclass(frozen=True)
class Embed:
    """The embeddable Python that was unpacked."""

    version: str  # "3.11.9": from the zip's name when it has one, else "3.11.0"
    pth: Path  # runtime/python311._pth

    @property
    def major_minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def tag(self) -> str:
        return self.major_minor.replace(".", "")


@dataclass(frozen=True)
class Options:
    python_embed: str
    out: Path
    requirements: Path = REPO_ROOT / "requirements.txt"
    wheelhouse: Path | None = None  # default: <out>/wheelhouse
    torch_index_url: str | None = None
    torch_wheel: Path | None = None
    offline: bool = False
    archive: str = "none"
    force: bool = False
    quiet: bool = False


# --------------------------------------------------------------------------------------------- small helpers
def project_version(root: Path = REPO_ROOT) -> str:
    """``version`` of ``[project]`` in pyproject.toml."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.MULTILINE | re.DOTALL)
    if not match:
        raise BuildError(f"no [project] version in {root / 'pyproject.toml'}")
    return match.group(1)


def package_name(version: str) -> str:
    return f"GPT-SoVITS-Studio-{version}-win64"


def pe_machine(head: bytes) -> int | None:
    """The machine field of a Windows executable's PE header (``0x8664`` for x64), None if it is not one."""
    if len(head) < 64 or head[:2] != b"MZ":
        return None
    (offset,) = struct.unpack_from("<I", head, 0x3C)
    if len(head) < offset + 6 or head[offset:offset + 4] != b"PE\0\0":
        return None
    return struct.unpack_from("<H", head, offset + 4)[0]


def wheel_tags(filename: str) -> tuple[str, str, str]:
    """``(python, abi, platform)`` tags of a wheel file name."""
    parts = filename[: -len(".whl")].split("-")
    if len(parts) < 5:
        raise BuildError(f"{filename} is not a wheel file name")
    return parts[-3], parts[-2], parts[-1]


def run(cmd: list[str], quiet: bool, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``cmd``, echoing its output unless ``quiet``; return its exit code and output (decoded as UTF-8)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8",
                            errors="replace", env=env)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if not quiet:
            sys.stdout.write(line)
    return proc.wait(), "".join(lines)


def tail(text: str, n: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def say(message: str) -> None:
    print(f"build.py: {message}", flush=True)


# --------------------------------------------------------------------------------------------- the Python
def fetch(source: str, downloads: Path, offline: bool) -> Path:
    """The embeddable zip as a local file: ``source`` itself, or downloaded from the URL ``source``."""
    if not re.match(r"^https?://", source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise BuildError(f"--python-embed {source}: no such file. Pass the official Windows embeddable package "
                             "(python-3.11.x-embed-amd64.zip from python.org) or its URL.")
        return path
    if offline:
        raise BuildError("--offline: --python-embed must be a local file, not a URL")
    target = downloads / source.rstrip("/").rsplit("/", 1)[-1]
    if target.is_file():
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    say(f"downloading {source}")
    partial = target.with_name(f"{target.name}.partial")
    try:
        with urllib.request.urlopen(source, timeout=60) as response, open(partial, "wb") as fh:
            shutil.copyfileobj(response, fh)
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise BuildError(f"could not download {source} ({exc}). Download it where the internet is reachable and "
                         "pass the file: --python-embed python-3.11.x-embed-amd64.zip") from None
    partial.replace(target)
    return target


def unpack_embed(zip_path: Path, runtime: Path) -> Embed:
    """Unpack the official embeddable zip into ``runtime`` after checking that it is one, for 64-bit Windows."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BuildError(f"--python-embed {zip_path}: not a zip file ({exc})") from None
    with archive:
        names = set(archive.namelist())
        pths = sorted(n for n in names if re.fullmatch(r"python3\d+\._pth", n))
        tag = pths[0][len("python"):-len("._pth")] if len(pths) == 1 else ""
        needed = {"python.exe", f"python{tag}.dll", f"python{tag}.zip"}
        if not tag or not needed <= names:
            raise BuildError(f"--python-embed {zip_path}: not a Windows embeddable Python (expected python.exe, "
                             "python3XY.dll, python3XY.zip and python3XY._pth at the top of the zip); use the "
                             "'Windows embeddable package (64-bit)' of CPython 3.11 from python.org")
        machine = pe_machine(archive.read("python.exe")[:4096])
        if machine != PE_AMD64:
            kind = PE_MACHINES.get(machine, "not a Windows program") if machine else "not a Windows program"
            raise BuildError(f"--python-embed {zip_path}: its python.exe is {kind}; the package needs the 64-bit "
                             "(amd64) embeddable zip")
        archive.extractall(runtime)
    found = re.search(r"python-(3\.\d+\.\d+)", zip_path.name)
    version = found.group(1) if found and found.group(1).replace(".", "").startswith(tag) else f"3.{tag[1:]}.0"
    return Embed(version, runtime / pths[0])


def enable_site(pth: Path) -> None:
    """Make the ``._pth`` file add the program folder (``..``) and ``Lib\\site-packages`` and run ``site``.

    The program folder comes before site-packages, as the repository root does for ``python webui.py``: a wheel
    that ships a top-level ``tools`` or ``app`` package cannot shadow ours. A ``._pth`` file also puts Python in
    isolated mode (``PYTHON*`` variables are ignored), which is why the .bat files pass ``-X utf8``.
    """
    entries = []
    for line in pth.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line != "import site" and line not in entries:
            entries.append(line)
    for extra in ("..", "Lib\\site-packages"):
        if extra not in entries:
            entries.append(extra)
    lines = ["# The standard library, the program folder and site-packages (written by packaging/windows/build.py)",
             *entries, "import site", ""]
    pth.write_bytes("\r\n".join(lines).encode("utf-8"))


# --------------------------------------------------------------------------------------------- the wheels
def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements file, without comments."""
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def torch_pin(lines: list[str]) -> str | None:
    """The pinned torch version (``2.13.0``), None without a torch requirement."""
    for line in lines:
        match = re.fullmatch(r"torch\s*==\s*([\w.]+)", line)
        if match:
            return match.group(1)
        if re.match(r"torch\b", line):
            raise BuildError(f"torch must be pinned exactly (torch==X.Y.Z) in the requirements, found {line!r}")
    return None


def with_torch_choice(lines: list[str], opts: Options) -> list[str]:
    """The requirements with ``torch==X`` replaced by ``--torch-wheel``'s file when one is given (checked)."""
    pin = torch_pin(lines)
    if pin is None:
        if opts.torch_wheel or opts.torch_index_url:
            raise BuildError("--torch-wheel/--torch-index-url given, but the requirements do not pin torch")
        return lines
    if opts.torch_wheel is None:
        return lines
    wheel = opts.torch_wheel.expanduser().resolve()
    match = re.fullmatch(r"torch-([\w.]+?)(\+\w+)?-(.+)\.whl", wheel.name)
    if not wheel.is_file() or not match:
        raise BuildError(f"--torch-wheel {opts.torch_wheel}: not a torch wheel file")
    if match.group(1) != pin or not wheel.name.endswith("-win_amd64.whl"):
        raise BuildError(f"--torch-wheel {wheel.name}: the project pins torch=={pin}; use a "
                         f"torch-{pin}[+cuXYZ]-cp311-cp311-win_amd64.whl")
    return [f"torch @ {wheel.as_uri()}" if re.match(r"torch\b", line) else line for line in lines]


class WheelSet:
    """pip, run for 64-bit Windows and the embedded Python's version, over one requirement set."""

    def __init__(self, opts: Options, embed: Embed, wheelhouse: Path):
        self.opts, self.embed, self.wheelhouse = opts, embed, wheelhouse

    def pip(self, *args: str) -> tuple[int, str]:
        target = ["--platform", "win_amd64", "--python-version", self.embed.major_minor, "--implementation", "cp",
                  "--abi", f"cp{self.embed.tag}", "--only-binary=:all:", "--find-links", str(self.wheelhouse),
                  "--disable-pip-version-check"]
        if self.opts.offline:
            target.append("--no-index")
        if self.opts.torch_index_url:
            target += ["--extra-index-url", self.opts.torch_index_url]
        return run([sys.executable, str(PIP_FOR_WINDOWS), self.embed.version, *args, *target], self.opts.quiet)

    def resolve(self, lines: list[str], work: Path) -> dict:
        """pip's installation report for ``lines``; source-only requirements are built into wheels on the way."""
        requirements = work / "requirements-windows.txt"
        requirements.write_text("\n".join(lines) + "\n", encoding="utf-8")
        built = [] if self.opts.offline else self.prebuild(KNOWN_SOURCE_ONLY)
        while True:
            report = work / "resolution.json"
            rc, output = self.pip("install", "--dry-run", "--ignore-installed", "--target", str(work / "dry-run"),
                                  "--report", str(report), "-r", str(requirements))
            if rc == 0:
                return json.loads(report.read_text(encoding="utf-8"))
            if any(marker in output for marker in UNREACHABLE):
                raise BuildError("the package index is unreachable. Build where it is, or fill a folder with the "
                                 "wheels and pass --offline --wheelhouse DIR.\n" + tail(output))
            requirement = source_only_requirement(output)
            if requirement is None or requirement in built:
                raise BuildError("pip could not resolve the requirements for win_amd64/cp"
                                 f"{self.embed.tag}:\n{tail(output)}")
            built.append(requirement)
            build_pure_wheel(requirement, self.wheelhouse, self.opts)

    def prebuild(self, requirements: tuple[str, ...]) -> list[str]:
        """Build the wheels of ``requirements`` not yet in the wheelhouse, side by side (each build is a pip process
        that partly waits for the index); those built or already there, in the given order. A failed build is only
        reported: the resolution loop meets that requirement again if it is really needed."""
        have = {canonical_name(wheel.name.split("-", 1)[0]) for wheel in self.wheelhouse.glob("*.whl")}
        missing = [r for r in requirements if canonical_name(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) not in have]
        failed = set()
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(PARALLEL_BUILDS, len(missing)))) as pool:
            quiet = dataclasses.replace(self.opts, quiet=True)  # side-by-side pip logs would interleave
            builds = {requirement: pool.submit(build_pure_wheel, requirement, self.wheelhouse, quiet)
                      for requirement in missing}
            for requirement, build in builds.items():
                try:
                    build.result()
                except BuildError as exc:
                    say(f"{requirement}: building it ahead failed; the resolution will say if it is needed "
                        f"({str(exc).splitlines()[0]})")
                    failed.add(requirement)
        return [requirement for requirement in requirements if requirement not in failed]

    def check(self, report: dict, pin: str | None) -> list[tuple[str, str]]:
        """Check the resolution is for Windows and torch is the pinned one; return ``(name==version, install
        spec)`` pairs (the spec is a file URL for a local wheel)."""
        env = report.get("environment", {})
        if env.get("sys_platform") != "win32" or env.get("python_version") != self.embed.major_minor:
            raise BuildError(f"pip resolved for {env.get('sys_platform')}/{env.get('python_version')}, not for "
                             f"win32/{self.embed.major_minor}: this pip's internals differ from what "
                             "pip_for_windows.py patches; use pip 23-26")
        specs, wrong = [], []
        for item in report["install"]:
            name, version = item["metadata"]["name"], item["metadata"]["version"]
            url = item["download_info"]["url"]
            if not url.endswith(".whl") or wheel_tags(url.rsplit("/", 1)[-1])[2] not in ("win_amd64", "any"):
                wrong.append(url)
            if name.lower() == "torch" and pin is not None:
                if version.split("+")[0] != pin:
                    raise BuildError(f"torch {version} was picked, but the project pins torch=={pin}")
                if self.opts.torch_index_url and "+" not in version:  # PyPI's builds carry no local label
                    raise BuildError(f"{self.opts.torch_index_url} has no torch=={pin} for win_amd64/cp"
                                     f"{self.embed.tag}; pip fell back to {url}")
            specs.append((f"{name}=={version}", f"{name} @ {url}" if item.get("is_direct") else f"{name}=={version}"))
        if wrong:
            raise BuildError("not Windows wheels: " + ", ".join(wrong))
        return specs

    def install(self, specs: list[tuple[str, str]], site: Path, work: Path) -> None:
        pins = work / "pinned.txt"
        pins.write_text("".join(f"{spec}\n" for _, spec in specs), encoding="utf-8")
        # --no-compile: .pyc files made by this machine's Python would not fit another Python version
        rc, output = self.pip("install", "--no-deps", "--no-compile", "--target", str(site), "-r", str(pins))
        if rc != 0:
            raise BuildError("installing the resolved wheels failed:\n" + tail(output))
        for scripts in ("bin", "Scripts"):  # console scripts made for this machine, useless in the package
            shutil.rmtree(site / scripts, ignore_errors=True)


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Antlr4_Python3.Runtime`` → ``antlr4-python3-runtime``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def source_only_requirement(pip_output: str) -> str | None:
    """The requirement pip found no wheel for: a pin (``No matching distribution found for jieba==0.42.1``) or a
    dependency named in a ResolutionImpossible report (``antlr4-python3-runtime`` with the range a package asks)."""
    direct = NO_DISTRIBUTION.search(pip_output)
    if direct is not None:
        return direct.group(1)
    named = NO_DISTRIBUTION_IN_CONFLICT.search(pip_output)
    if named is None:
        return None
    name = named.group(1).lower()
    for spec in DEPENDS_ON.findall(pip_output):
        if re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower() == name:
            return spec
    return name


def build_pure_wheel(requirement: str, wheelhouse: Path, opts: Options) -> Path:
    """Build a source-only requirement into a wheel; only a pure-Python one (``none-any``) fits Windows.

    pip writes into a folder of this build's own, so builds running side by side cannot take each other's wheel.
    """
    say(f"{requirement} has no Windows wheel; building it from source")
    wheelhouse.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=wheelhouse) as out:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
               "-w", out, "--find-links", str(wheelhouse), requirement]
        if opts.offline:
            cmd += ["--no-index", "--no-build-isolation"]  # the build backend (setuptools) of this Python
        # No C compiler: packages whose C extension is an optional speed-up (crcmod) then build their pure-Python
        # variant, which runs on Windows; a compiled wheel of this machine would not (and a cached one is not used).
        env = {**os.environ, "CC": "false", "CXX": "false"}
        rc, output = run(cmd, opts.quiet, env)
        new = sorted(Path(out).glob("*.whl"))
        if rc != 0 or not new:
            raise BuildError(f"{requirement} has no win_amd64 wheel and building it from source failed:\n"
                             f"{tail(output)}")
        _, abi, platform = wheel_tags(new[0].name)
        if (abi, platform) != ("none", "any"):
            raise BuildError(f"{requirement} has no win_amd64 wheel and is not pure Python (built {new[0].name}): "
                             "build its wheel on Windows (pip wheel ...) and put it into --wheelhouse")
        wheel = wheelhouse / new[0].name
        os.replace(new[0], wheel)
    return wheel


def check_site_packages(site: Path) -> int:
    """Every extension module must be a 64-bit Windows one; returns how many there are."""
    foreign = [p for p in site.rglob("*") if p.suffix in (".so", ".dylib")]
    pyds = sorted(site.rglob("*.pyd"))
    for pyd in pyds:
        with open(pyd, "rb") as fh:
            if pe_machine(fh.read(4096)) != PE_AMD64:
                foreign.append(pyd)
    if foreign:
        raise BuildError("site-packages holds binaries that are not 64-bit Windows ones: "
                         + ", ".join(str(p.relative_to(site)) for p in foreign[:10]))
    return len(pyds)


# --------------------------------------------------------------------------------------------- the program
def ignored_by(gitignore: Path):
    """A predicate for relative POSIX paths from the anchored/plain patterns of ``.gitignore`` (for a checkout
    without git: a source archive)."""
    rules = []
    if gitignore.is_file():
        for line in gitignore.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                negate, line = line.startswith("!"), line.lstrip("!")
                rules.append((negate, line.startswith("/"), line.strip("/")))

    def ignored(rel: str) -> bool:
        result = False
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for negate, anchored, pattern in rules:
            hit = any(fnmatch.fnmatch(p, pattern) for p in prefixes) if anchored else \
                any(fnmatch.fnmatch(part, pattern) for part in parts)
            if hit:
                result = not negate
        return result

    return ignored


def program_files(root: Path = REPO_ROOT) -> list[str]:
    """Relative paths (POSIX form) of the program files: git's tracked and unignored files, else a walk."""
    if (root / ".git").exists() and shutil.which("git"):
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                              "--", *PROGRAM], capture_output=True, check=True)
        return sorted({p for p in out.stdout.decode("utf-8").split("\0") if p and (root / p).is_file()})
    ignored = ignored_by(root / ".gitignore")
    files = []
    for entry in PROGRAM:
        path = root / entry
        for file in sorted(path.rglob("*")) if path.is_dir() else [path] if path.is_file() else []:
            rel = file.relative_to(root).as_posix()
            if file.is_file() and "__pycache__" not in rel and file.suffix != ".pyc" and not ignored(rel):
                files.append(rel)
    return sorted(files)


def copy_program(dest: Path, root: Path = REPO_ROOT) -> int:
    files = program_files(root)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    (dest / "pretrained_models").mkdir(exist_ok=True)
    return len(files)


def write_text_crlf(path: Path, text: str, bom: bool = False) -> None:
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


def write_start_files(dest: Path) -> None:
    """The .bat files (ASCII, CRLF: cmd.exe reads a batch file in the console's code page and finds labels
    reliably only with CRLF) and the short bilingual read-me (UTF-8 with BOM, so Notepad shows the Chinese)."""
    for name in LAUNCHERS:
        text = (HERE / "launchers" / name).read_text(encoding="utf-8")
        if not text.isascii():
            raise BuildError(f"launchers/{name} must be ASCII: cmd.exe reads it in the console's code page")
        write_text_crlf(dest / name, text)
    write_text_crlf(dest / "README-Windows.txt", (HERE / "README-Windows.txt").read_text(encoding="utf-8"), bom=True)


def write_build_info(dest: Path, embed: Embed, source: Path, opts: Options, specs: list[tuple[str, str]]) -> None:
    torch = (f"local wheel {opts.torch_wheel.name}" if opts.torch_wheel else
             f"index {opts.torch_index_url}" if opts.torch_index_url else "the package index (CPU build)")
    lines = [f"GPT-SoVITS Studio {project_version()} for 64-bit Windows",
             f"built {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {sys.platform}",
             f"Python {embed.version} (embeddable package {source.name})", f"torch from {torch}", "",
             "Installed packages:", *sorted((pin for pin, _ in specs), key=str.lower), ""]
    write_text_crlf(dest / "BUILD-INFO.txt", "\n".join(lines))


def seven_zip() -> str | None:
    """7-Zip's command line program on PATH, if any."""
    return next((shutil.which(n) for n in ("7z", "7za", "7zz") if shutil.which(n)), None)


def check_archiver(kind: str) -> None:
    if kind != "7z" or seven_zip():
        return
    try:
        import py7zr  # noqa: F401
    except ImportError:
        raise BuildError("--archive 7z needs 7-Zip (7z, 7za or 7zz on PATH) or the py7zr package; or use --archive "
                         "zip") from None


def make_archive(folder: Path, kind: str, quiet: bool) -> Path:
    """``<folder>.zip`` or ``<folder>.7z`` next to the folder (7-Zip on PATH, else py7zr)."""
    target = folder.with_name(f"{folder.name}.{kind}")
    partial = folder.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    if kind == "zip":
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for path in sorted(folder.rglob("*")):
                archive.write(path, path.relative_to(folder.parent).as_posix())
    elif seven_zip():
        rc, output = run([seven_zip(), "a", "-t7z", "-mx=7", str(partial), str(folder)], quiet)
        if rc != 0:
            raise BuildError("7-Zip failed:\n" + tail(output))
    else:
        import py7zr

        with py7zr.SevenZipFile(partial, "w") as archive:
            archive.writeall(folder, folder.name)
    partial.replace(target)
    return target


# --------------------------------------------------------------------------------------------- the build
def build(opts: Options) -> Path:
    """Assemble the package folder (and archive); returns the folder."""
    out = opts.out.expanduser().resolve()
    name = package_name(project_version())
    final, work_dir = out / name, out / f"{name}.partial"
    if final.exists() and not opts.force:
        raise BuildError(f"{final} exists; pass --force to replace it")
    wheelhouse = (opts.wheelhouse or out / "wheelhouse").expanduser().resolve()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    requested = requirement_lines(opts.requirements)
    pin = torch_pin(requested)
    lines = with_torch_choice(requested, opts)  # argument errors before any work
    check_archiver(opts.archive)
    shutil.rmtree(work_dir, ignore_errors=True)
    source = fetch(opts.python_embed, out / "downloads", opts.offline)
    say(f"unpacking {source.name}")
    embed = unpack_embed(source, work_dir / "runtime")
    enable_site(embed.pth)
    wheels = WheelSet(opts, embed, wheelhouse)
    with tempfile.TemporaryDirectory(prefix="gsv-win-") as tmp:
        say(f"resolving {opts.requirements.name} for win_amd64 / CPython {embed.version}")
        specs = wheels.check(wheels.resolve(lines, Path(tmp)), pin)
        say(f"installing {len(specs)} wheels into runtime/Lib/site-packages")
        site = work_dir / "runtime" / "Lib" / "site-packages"
        wheels.install(specs, site, Path(tmp))
    n_pyd = check_site_packages(site)
    n_files = copy_program(work_dir)
    write_start_files(work_dir)
    write_build_info(work_dir, embed, source, opts, specs)
    if final.exists():
        shutil.rmtree(final)
    work_dir.replace(final)
    size = sum(p.stat().st_size for p in final.rglob("*") if p.is_file()) / 2**20
    say(f"{final}: {n_files} program files, {len(specs)} packages ({n_pyd} Windows extension modules), "
        f"{size:.0f} MiB")
    if opts.archive != "none":
        say(f"archived as {make_archive(final, opts.archive, opts.quiet)}")
    return final


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python packaging/windows/build.py", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--python-embed", required=True,
                        help="the official Windows embeddable CPython 3.11 zip (python-3.11.x-embed-amd64.zip): "
                             "a file or an https URL")
    parser.add_argument("--out", type=Path, required=True, help="folder that receives the package folder")
    parser.add_argument("--requirements", type=Path, default=REPO_ROOT / "requirements.txt",
                        help="the runtime requirements to install")
    parser.add_argument("--wheelhouse", type=Path, default=None,
                        help="folder of extra wheels, also where source-only requirements are built "
                             "(default: <out>/wheelhouse)")
    torch = parser.add_mutually_exclusive_group()
    torch.add_argument("--torch-index-url", default=None,
                       help="package index with a CUDA torch build, e.g. https://download.pytorch.org/whl/cu128 "
                            "(default: the CPU wheel of the package index)")
    torch.add_argument("--torch-wheel", type=Path, default=None,
                       help="a local torch-<pin>+cuXYZ-cp311-cp311-win_amd64.whl")
    parser.add_argument("--offline", action="store_true",
                        help="use no package index: every wheel must be in --wheelhouse (or pip's find-links)")
    parser.add_argument("--archive", choices=("none", "zip", "7z"), default="none",
                        help="also pack the folder into <name>.zip or <name>.7z")
    parser.add_argument("--force", action="store_true", help="replace an existing package folder")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not echo pip's output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    opts = Options(args.python_embed, args.out, args.requirements, args.wheelhouse, args.torch_index_url,
                   args.torch_wheel, args.offline, args.archive, args.force, args.quiet)
    try:
        build(opts)
    except BuildError as exc:
        print(f"build.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
