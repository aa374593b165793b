"""Hostile traffic against the service: lying Content-Lengths, uploads and streams cut
off midway, a thousand sessions opened at once. Each request gets its 4xx (or its
connection closed), /healthz answers throughout, and nothing is left behind.

Usage: hostile_client.py BASE_URL TOKEN FIXTURES SERVICE_FOLDER"""
import concurrent.futures
import http.client
import io
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import zipfile

base, token, fixtures, folder = sys.argv[1:5]
url = urllib.parse.urlparse(base)
auth = {"Authorization": "Bearer " + token}
frames = open(f"{fixtures}/frames.zip", "rb").read()
sessions_folder = f"{folder}/sessions"


def request(method, path, body=None, headers=None, timeout=120):
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    connection.request(method, path, body=body, headers={**auth, **(headers or {})})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def raw(payload, read=True, timeout=10):
    """Sends bytes as they are on a fresh socket; returns what came back before close or timeout."""
    s = socket.create_connection((url.hostname, url.port), timeout=timeout)
    s.sendall(payload)
    answer = b""
    if read:
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except socket.timeout:
            pass
    s.close()
    return answer


# /healthz polled all along; every answer must be 200.
health = {"ok": 0, "bad": []}
stop = threading.Event()


def poll():
    while not stop.is_set():
        try:
            status, _ = request("GET", "/healthz", timeout=10)
            health["ok" if status == 200 else "bad"] += 1 if status == 200 else 0
            if status != 200:
                health["bad"].append(status)
        except Exception as error:  # noqa: BLE001 — a refused or stalled /healthz is the failure
            health["bad"].append(repr(error))
        time.sleep(0.05)


poller = threading.Thread(target=poll)
poller.start()
try:
    head = f"Host: x\r\nAuthorization: Bearer {token}\r\n"
    # Content-Length larger than the body, then the client goes away: nothing is kept.
    raw(f"POST /v1/sessions HTTP/1.1\r\n{head}Content-Type: application/zip\r\nContent-Length: 100000\r\n\r\n".encode() + frames[:1000],
        read=False)
    # Content-Length larger than the body, the client waiting: the server waits too, then the client gives up.
    raw(f"POST /v1/segment HTTP/1.1\r\n{head}Content-Length: 5000\r\n\r\n".encode() + b"\x89PNG" * 10, timeout=2)
    # Content-Length smaller than the body: the rest is not a request, and is refused.
    answer = raw(f"POST /v1/segment?format=gif HTTP/1.1\r\n{head}Content-Length: 4\r\n\r\n".encode() + b"abcdGARBAGE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    # A body past the cap, declared: refused before it is read.
    answer = raw(f"POST /v1/segment HTTP/1.1\r\n{head}Content-Length: 999999999\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 413") and b"max-body-bytes" in answer, answer[:300]
    # Not HTTP at all.
    answer = raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64))
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:100]

    # Propagations whose clients disconnect after one frame, on more sessions than --max-jobs (2),
    # over 60 frames (several seconds each): each job stops with its client and gives its slot
    # back, so a last one still runs.
    source = zipfile.ZipFile(io.BytesIO(frames))
    long_zip = io.BytesIO()
    with zipfile.ZipFile(long_zip, "w") as z:
        names = sorted(source.namelist())
        for t in range(60):
            z.writestr(f"{t:05d}.jpg", source.read(names[t % len(names)]))
    ids = []
    for _ in range(4):
        status, data = request("POST", "/v1/sessions", long_zip.getvalue())
        assert status == 201, data
        ids.append(json.loads(data)["id"])
        mask = open(f"{fixtures}/first_mask.png", "rb").read()
        assert request("PUT", f"/v1/sessions/{ids[-1]}/masks/0", mask, {"Content-Type": "image/png"})[0] == 200
    for sid in ids[:3]:
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        connection.request("POST", f"/v1/sessions/{sid}/propagate", headers=auth)
        response = connection.getresponse()
        assert response.status == 200, response.read()
        response.readline()
        connection.sock.shutdown(socket.SHUT_RDWR)
        connection.close()
        time.sleep(0.5)
    status, data = request("POST", f"/v1/sessions/{ids[3]}/propagate")
    assert status == 200 and data.decode().splitlines()[-1] == '{"end":"done"}', (status, data[-200:])
    for sid in ids:
        assert request("DELETE", f"/v1/sessions/{sid}")[0] == 204

    # A thousand sessions at once: as many as --max-sessions open, the rest refused naming the cap.
    def open_session(_):
        return request("POST", "/v1/sessions", frames)

    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(open_session, range(1000)))
    created = [json.loads(d)["id"] for s, d in results if s == 201]
    refused = [json.loads(d) for s, d in results if s == 422]
    assert len(created) + len(refused) == 1000, sorted({s for s, _ in results})
    assert 1 <= len(created) <= 16, len(created)
    assert all(r["cap"] == "max-sessions" for r in refused), refused[:3]
    for sid in created:
        assert request("DELETE", f"/v1/sessions/{sid}")[0] == 204
finally:
    stop.set()
    poller.join()

assert not health["bad"], health["bad"][:5]
assert health["ok"] >= 20, health
left = os.listdir(sessions_folder)
assert left == [], left
print(f"hostile: all checks passed; /healthz answered {health['ok']} times; {len(created)} sessions opened, {len(refused)} refused")
