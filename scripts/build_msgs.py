#!/usr/bin/env python3
"""Build the `ros_ground_msgs` interface package (msg/) into a Python venv with CMake.

On a ROS 2 install `colcon build` does this; here ROS comes from PyPI wheels, whose exported
CMake files carry include paths of the machine that built them, so they are rewritten first.
Skips the build when the interface files are unchanged since the last one (a stamp file).
Run with the venv's interpreter: `.venv/bin/python scripts/build_msgs.py`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "msg"
# one CMake build tree per venv (.venv, .venv-jazzy): a cache configured for one cannot build for another
BUILD = ROOT / ".build-msgs" / Path(sys.prefix).name
# the manylinux image's interpreter the wheels were built with: one per Python version
_MAJOR, _MINOR = sys.version_info[:2]
_BUILT_WITH = f"/opt/python/cp{_MAJOR}{_MINOR}-cp{_MAJOR}{_MINOR}"
_VERSION = f"python{_MAJOR}.{_MINOR}"
STALE_PATHS = {
    f"{_BUILT_WITH}/include/{_VERSION}": sysconfig.get_paths()["include"],
}


def _prefix() -> Path:
    if sys.prefix == sys.base_prefix:
        sys.exit("build_msgs.py must run inside the project's venv (.venv/bin/python)")
    return Path(sys.prefix)


def _fix_exported_paths(prefix: Path) -> int:
    import numpy

    stale = dict(STALE_PATHS)
    stale[f"{_BUILT_WITH}/lib/{_VERSION}/site-packages/numpy/_core/include"] = numpy.get_include()
    changed = 0
    for path in (prefix / "share").rglob("*.cmake"):
        text = path.read_text(errors="surrogateescape")
        new = text
        for old, replacement in stale.items():
            new = new.replace(old, replacement)
        if new != text:
            path.write_text(new, errors="surrogateescape")
            changed += 1
    return changed


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(SOURCE.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(SOURCE)).encode())
            digest.update(path.read_bytes())
    digest.update(sys.prefix.encode())
    return digest.hexdigest()


def main() -> None:
    prefix = _prefix()
    stamp = prefix / ".ros_ground_msgs.stamp"
    digest = _source_digest()
    if stamp.exists() and stamp.read_text() == digest and _importable():
        print("ros_ground_msgs: up to date")
        return
    fixed = _fix_exported_paths(prefix)
    if fixed:
        print(f"ros_ground_msgs: rewrote build-machine paths in {fixed} exported CMake files")
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = str(prefix)
    cmake_paths = [str(prefix)]
    site = Path(sysconfig.get_paths()["purelib"])
    cmake_paths += [str(p.parent.parent) for p in site.glob("*/share/cmake")]
    env["CMAKE_PREFIX_PATH"] = os.pathsep.join(cmake_paths)
    env["PATH"] = f"{prefix / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    cmake = str(prefix / "bin" / "cmake")
    configure = [
        cmake, "-S", str(SOURCE), "-B", str(BUILD), "-G", "Ninja",
        f"-DCMAKE_INSTALL_PREFIX={prefix}",
        f"-DPython3_EXECUTABLE={sys.executable}",
        "-DBUILD_TESTING=OFF",
        f"-DCMAKE_MAKE_PROGRAM={prefix / 'bin' / 'ninja'}",
    ]
    for step in (configure, [cmake, "--build", str(BUILD)], [cmake, "--install", str(BUILD)]):
        quiet = subprocess.DEVNULL if step is not configure else None
        subprocess.run(step, check=True, env=env, stdout=quiet)
    if not _importable():
        sys.exit("ros_ground_msgs built but `import ros_ground_msgs.msg` failed in the venv")
    stamp.write_text(digest)
    print("ros_ground_msgs: built and installed into", prefix)


def _importable() -> bool:
    probe = "from ros_ground_msgs.msg import MaskRLE; from ros_ground_msgs.action import Ground"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True)
    return result.returncode == 0


if __name__ == "__main__":
    main()
