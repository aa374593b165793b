"""Load on `segkit serve` from CLIENTS threads, each with its own keep-alive connection,
posting one image to /v1/segment in a loop for SECONDS. Prints JSON: requests, errors,
throughput and latency percentiles (milliseconds).

Usage: serve_load.py URL IMAGE CLIENTS SECONDS"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

url, image_path, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
target = urllib.parse.urlparse(url)
image = open(image_path, "rb").read()
latencies, errors, lock = [], [], threading.Lock()
start = time.perf_counter()
end = start + seconds


def client():
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
    while time.perf_counter() < end:
        began = time.perf_counter()
        try:
            connection.request("POST", "/v1/segment?format=png", body=image, headers={"Content-Type": "image/jpeg"})
            response = connection.getresponse()
            response.read()
            ok = response.status == 200
        except Exception as error:  # noqa: BLE001 — counted, and the connection reopened
            ok = False
            connection.close()
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        took = time.perf_counter() - began
        with lock:
            (latencies if ok else errors).append(took)
    connection.close()


threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.perf_counter() - start
latencies.sort()


def percentile(p):
    return 1000 * latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else float("nan")


print(json.dumps({"requests": len(latencies), "errors": len(errors), "seconds": round(elapsed, 1),
                  "per_second": round(len(latencies) / elapsed, 2), "p50_ms": round(percentile(50), 1),
                  "p99_ms": round(percentile(99), 1)}))
