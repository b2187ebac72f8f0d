"""Load on `regionedit serve`: N concurrent clients upload a PNG that decodes large, like the page does.

    python benchmarks/web_load.py [--clients 50] [--side 3000] [--max-pixels 16777216] [--max-queue 8]
                                  [--concurrency 1] [--rounds 1] [--model shapes-64]

Starts `regionedit serve` as a subprocess on a free loopback port (--no-check), then fires --clients threads at
once; each uploads the same PNG (--side x --side, a few KB compressed, side * side * 3 bytes decoded) through
/gradio_api/upload and runs the page's "upload" event (Gradio's queue: join + event stream), which checks the
header and decodes the image. Prints the server's peak RSS (VmHWM from /proc), the latency of each client
(p50 / p99 / max), and the rejects by kind: queue full (HTTP 503), other HTTP errors, refused events (e.g. over
--max-pixels). Use --side above sqrt(--max-pixels) to see uploads refused from their header before decoding.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
from PIL import Image


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_server(args) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "regionedit.cli.main", "serve", "--port", "0", "--no-check", "--threads", "1",
           "--model", args.model, "--max-pixels", str(args.max_pixels), "--max-queue", str(args.max_queue),
           "--concurrency", str(args.concurrency), "--max-connections", str(args.max_connections)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 300
    for line in proc.stdout:
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep draining
            return proc, m.group(1)
        if time.time() > deadline:
            break
    proc.kill()
    raise SystemExit("the server did not start")


def upload_event_index(client, url: str) -> int:
    config = client.get(url + "config").json()
    for dep in config["dependencies"]:
        if dep.get("api_name") == "upload":
            return dep["id"]
    raise SystemExit("no 'upload' event in the page's config")


def one_client(url: str, png: bytes, fn_index: int, i: int, out: list, start: threading.Barrier) -> None:
    import httpx

    origin = url.rstrip("/")
    with httpx.Client(timeout=600, headers={"Origin": origin}) as c:
        start.wait()
        t0 = time.perf_counter()
        try:
            r = c.post(url + "gradio_api/upload", files={"files": (f"big{i}.png", png, "image/png")})
            if r.status_code != 200:
                out.append((time.perf_counter() - t0, f"upload HTTP {r.status_code}"))
                return
            data = [None, {"path": r.json()[0], "orig_name": "big.png", "meta": {"_type": "gradio.FileData"}}]
            r = c.post(url + "gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": f"load{i}",
                                                             "event_data": None, "trigger_id": None})
            if r.status_code == 503:
                out.append((time.perf_counter() - t0, "queue full (503)"))
                return
            if r.status_code != 200:
                out.append((time.perf_counter() - t0, f"join HTTP {r.status_code}"))
                return
            result = "no answer"
            with c.stream("GET", url + f"gradio_api/queue/data?session_hash=load{i}") as s:
                for line in s.iter_lines():
                    if line.startswith("data:"):
                        msg = json.loads(line[5:])
                        if msg.get("msg") == "process_completed":
                            result = "ok" if msg.get("success") else "refused: " + str(
                                (msg.get("output") or {}).get("error"))[:60]
            out.append((time.perf_counter() - t0, result))
        except Exception as e:  # noqa: BLE001 - a failed client is a result
            out.append((time.perf_counter() - t0, f"{type(e).__name__}"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--side", type=int, default=3000, help="the PNG's width and height (decoded: side*side*3 bytes)")
    p.add_argument("--max-pixels", type=int, default=4096 * 4096)
    p.add_argument("--max-queue", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--max-connections", type=int, default=128)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--model", default="shapes-64")
    args = p.parse_args(argv)

    import httpx

    buf = io.BytesIO()
    Image.fromarray(np.zeros((args.side, args.side, 3), np.uint8)).save(buf, format="PNG", compress_level=9)
    png = buf.getvalue()
    print(f"PNG {args.side}x{args.side}: {len(png) / 1024:.0f} KB on the wire, "
          f"{args.side * args.side * 3 / 2**20:.0f} MB decoded", flush=True)
    proc, url = start_server(args)
    try:
        with httpx.Client(timeout=60) as c:
            fn_index = upload_event_index(c, url)
        idle = rss_mb(proc.pid, "VmRSS")
        print(f"server {url} (pid {proc.pid}): {idle:.0f} MB RSS idle", flush=True)
        for rnd in range(args.rounds):
            out: list = []
            start = threading.Barrier(args.clients)
            threads = [threading.Thread(target=one_client, args=(url, png, fn_index, i, out, start))
                       for i in range(args.clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            lat = np.array([s for s, _ in out])
            kinds = Counter(k for _, k in out)
            print(f"round {rnd + 1}: {args.clients} clients in {wall:.1f} s; latency p50 {np.percentile(lat, 50):.2f} s, "
                  f"p99 {np.percentile(lat, 99):.2f} s, max {lat.max():.2f} s", flush=True)
            for k, n in kinds.most_common():
                print(f"  {n:4d} {k}")
            print(f"  rejects: {sum(n for k, n in kinds.items() if k != 'ok')}", flush=True)
        print(f"server peak RSS {rss_mb(proc.pid):.0f} MB (idle {idle:.0f} MB)")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
