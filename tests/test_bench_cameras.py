"""bench.cameras' report: one row per camera, with its answers and latency."""

from bench.cameras import markdown


def test_markdown_reports_every_camera_and_the_rss_trend():
    lat = {"p50": 700.4, "p99": 950.0, "n": 2}
    result = {"seconds": 2.0, "rate_hz": 10.0, "command_period_s": 1.0, "set": ["queue_size:=8"],
              "camera_hz_sent": 9.96, "rss_mb_start": 1000.0, "rss_mb_end": 1001.5,
              "rss_slope_mb_per_min": 0.5,
              "cameras": {c: {"commands": 2, "responses": 2, "ok": 1, "rejected_busy": 1,
                              "other": 0, "other_errors": [], "latency_ms": lat}
                          for c in ("cam0", "cam1", "cam2")}}
    info = {"cpu": "x", "cpu_family_model": "1/1", "usable_cpus": 2, "ram_gb": 1, "os": "Linux",
            "python": "3"}
    text = markdown(result, info)
    assert "`python -m bench.cameras --set queue_size:=8`" in text
    for c in ("cam0", "cam1", "cam2"):
        assert f"| {c} | 2 | 2 | 1 | 1 | 0 | 700 | 950 |" in text
    assert "1000.0 -> 1001.5 MB (trend +0.50 MB/min)" in text
