"""Shared helpers: statistics, memory readings, machine description, ROS domain, logging."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    """Progress goes to stderr so `--json` keeps stdout to one JSON object."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values) -> float | None:
    values = [float(v) for v in values]
    return statistics.median(values) if values else None


def percentile(values, q: float) -> float | None:
    values = [float(v) for v in values]
    return float(np.percentile(values, q)) if values else None


def p50_p99(values) -> dict:
    """{"p50", "p99", "n"} of `values` (any iterable of numbers, a generator too; read once)."""
    values = [float(v) for v in values]
    return {"p50": _round(percentile(values, 50)), "p99": _round(percentile(values, 99)),
            "n": len(values)}


def _round(value, digits: int = 3):
    return None if value is None else round(float(value), digits)


def rnd(value, digits: int = 3):
    """Round floats (recursively in dicts/lists) for the JSON output."""
    if isinstance(value, dict):
        return {k: rnd(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rnd(v, digits) for v in value]
    if isinstance(value, (float, np.floating)):
        return round(float(value), digits)
    if isinstance(value, np.integer):
        return int(value)
    return value


# -- memory ---------------------------------------------------------------------------------


def proc_status_kb(field: str, pid: int | str = "self") -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, ...); None when unavailable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mb(pid: int | str = "self") -> float | None:
    kb = proc_status_kb("VmRSS", pid)
    return None if kb is None else kb / 1024.0


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    kb = proc_status_kb("VmHWM")
    return None if kb is None else kb / 1024.0


# -- machine -----------------------------------------------------------------------------------


def machine_info() -> dict:
    cpu = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key in ("model name", "cpu family", "model", "cpu MHz", "cache size", "flags") \
                        and key not in cpu:
                    cpu[key] = value
    except OSError:
        pass
    flags = set(cpu.get("flags", "").split())
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    mem_kb = None
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "cpu": cpu.get("model name", platform.processor() or "unknown"),
        "cpu_family_model": f"{cpu.get('cpu family', '?')}/{cpu.get('model', '?')}",
        "cpu_mhz": cpu.get("cpu MHz"),
        "cache": cpu.get("cache size"),
        "isa": isa,
        "hypervisor": "hypervisor" in flags,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "ram_gb": None if mem_kb is None else round(mem_kb / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "gpu": None,
    }
    try:
        import torch
        import transformers

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["transformers"] = transformers.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    info["rmw"] = os.environ.get("RMW_IMPLEMENTATION") or "default (rmw_fastrtps_cpp)"
    return info


def machine_line(info: dict) -> str:
    isa = ", ".join(info.get("isa") or []) or "n/a"
    vm = " (virtual machine)" if info.get("hypervisor") else ""
    return (f"{info['cpu']} (family/model {info['cpu_family_model']}, {info.get('cpu_mhz')} MHz, "
            f"{isa}){vm}, {info['usable_cpus']} usable cores, {info['ram_gb']} GB RAM, "
            f"{info['os']}, Python {info['python']}, torch {info.get('torch')} "
            f"({info.get('torch_threads')} threads), transformers {info.get('transformers')}")


# -- ROS -----------------------------------------------------------------------------------------


def private_ros_domain() -> int:
    """A ROS domain of our own for this run (inherited by the subprocesses we start)."""
    if os.environ.get("ROS_BENCH_DOMAIN_ID"):
        domain = int(os.environ["ROS_BENCH_DOMAIN_ID"])
    else:
        domain = random.SystemRandom().randint(102, 160)
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return domain


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


# -- scenes --------------------------------------------------------------------------------------


def tabletop_image(height: int = 240, width: int = 320, seed: int = 0) -> np.ndarray:
    """A synthetic RGB tabletop: a table, a wall and a few coloured objects (deterministic)."""
    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[: height // 3] = (200, 200, 210)  # wall
    img[height // 3:] = (150, 110, 70)  # table
    yy, xx = np.mgrid[:height, :width]
    colours = [(220, 30, 30), (30, 160, 40), (40, 60, 220), (240, 220, 40), (160, 60, 180),
               (250, 140, 20)]
    for i in range(4):
        cx = width * (0.15 + 0.22 * i) + rng.uniform(-8, 8)
        cy = height * rng.uniform(0.5, 0.8)
        rx, ry = width * rng.uniform(0.05, 0.1), height * rng.uniform(0.06, 0.14)
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        img[inside] = colours[(i + seed) % len(colours)]
    noise = rng.integers(-6, 7, img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def blob_masks(count: int = 10, height: int = 480, width: int = 640, seed: int = 0,
               coverage=(0.01, 0.10)) -> list[np.ndarray]:
    """Realistic object masks: ellipses and (rotated-looking) rectangles covering 1-10% each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    masks = []
    for i in range(count):
        area = rng.uniform(*coverage) * height * width
        aspect = rng.uniform(0.5, 2.0)
        if i % 2 == 0:  # ellipse: pi * a * b = area
            a = np.sqrt(area * aspect / np.pi)
            b = area / (np.pi * a)
            cx, cy = rng.uniform(a, width - a), rng.uniform(b, height - b)
            mask = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0
        else:  # rectangle with a notch, as a segmenter produces around a handle
            w = min(width - 2, np.sqrt(area * aspect))
            h = min(height - 2, area / w)
            x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
            mask = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
            nx, ny = x0 + w * 0.7, y0 + h * 0.3
            mask &= ~((xx >= nx) & (xx < nx + w * 0.15) & (yy >= ny) & (yy < ny + h * 0.2))
        masks.append(mask)
    return masks


# -- waiting on ROS -------------------------------------------------------------------------


def spin_until_set(executor, stop) -> None:
    """Spin `executor` until the threading.Event `stop` is set (run it in a thread)."""
    while not stop.is_set():
        try:
            executor.spin_once(timeout_sec=0.05)
        except Exception:  # noqa: BLE001 - shutdown races end the spinner
            return


def wait_until(predicate, timeout: float, poll: float = 0.02) -> bool:
    """Poll `predicate` every `poll` s until it holds or `timeout` s pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()
