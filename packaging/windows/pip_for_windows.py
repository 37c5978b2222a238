"""Run pip as if it ran on 64-bit Windows: ``python pip_for_windows.py 3.11.9 install --dry-run ...``.

``pip --platform win_amd64 --python-version 3.11`` picks Windows wheels, but pip still evaluates the environment
markers of requirements against the machine it runs on. From Linux that adds Linux-only dependencies
(``triton; platform_system == "Linux"`` of torch, which has no Windows wheel) and drops Windows-only ones
(``colorama; platform_system == "Windows"``, ``tzdata; sys_platform == "win32"``). This wrapper makes pip's marker
environment that of CPython ``<version>`` on 64-bit Windows, then runs pip with the remaining arguments. The
environment pip used is recorded in the ``--report`` file; ``build.py`` checks it, so a pip whose internals moved
fails the build instead of producing a package with the wrong dependencies.
"""

from __future__ import annotations

import sys


def windows_environment(python_version: str) -> dict[str, str]:
    """PEP 508 marker values of CPython ``python_version`` (``3.11.9``) on 64-bit Windows 10/11."""
    major_minor = ".".join(python_version.split(".")[:2])
    return {
        "implementation_name": "cpython", "implementation_version": python_version, "os_name": "nt",
        "platform_machine": "AMD64", "platform_python_implementation": "CPython", "platform_release": "10",
        "platform_system": "Windows", "platform_version": "10.0.19045", "python_full_version": python_version,
        "python_version": major_minor, "sys_platform": "win32",
    }


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    python_version, pip_args = argv[0], argv[1:]
    from pip._vendor.packaging import markers

    host_environment = markers.default_environment
    markers.default_environment = lambda: {**host_environment(), **windows_environment(python_version)}
    from pip._internal.cli.main import main as pip_main

    return pip_main(pip_args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
