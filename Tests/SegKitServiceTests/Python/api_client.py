"""The service's API exercised from outside, as a client would: every endpoint, the
label PNG against SegKit's own prediction, the COCO masks decoded by pycocotools,
the limits and refusals, a session propagated, cancelled and downloaded.

Usage: api_client.py BASE_URL TOKEN FIXTURES   (FIXTURES holds image.png, expected.png,
frames.zip, first_mask.png and big_header.png; written by ServiceTests.swift)."""
import http.client
import io
import json
import sys
import time
import urllib.parse
import zipfile

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

base, token, fixtures = sys.argv[1], sys.argv[2], sys.argv[3]
host, port = urllib.parse.urlparse(base).hostname, urllib.parse.urlparse(base).port


def request(method, path, body=None, headers=None, auth=True):
    """One request on a fresh connection: (status, headers, body bytes)."""
    connection = http.client.HTTPConnection(host, port, timeout=120)
    headers = dict(headers or {})
    if auth:
        headers["Authorization"] = "Bearer " + token
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), data


def expect_error(status, data, code, words, cap=None):
    assert status == code, (status, data)
    error = json.loads(data)
    assert words in error["error"], error
    if cap is not None:
        assert error.get("cap") == cap, error


def read(name):
    with open(f"{fixtures}/{name}", "rb") as f:
        return f.read()


# Liveness needs no token; everything else does.
status, _, data = request("GET", "/healthz", auth=False)
assert status == 200 and data == b"ok\n", (status, data)
status, _, data = request("GET", "/v1/models", auth=False)
expect_error(status, data, 401, "token")
status, _, data = request("GET", "/v1/models", headers={"Authorization": "Bearer wrong"}, auth=False)
expect_error(status, data, 401, "token")
status, _, data = request("GET", "/readyz")
assert status == 200 and b"1 image models, one video model" in data, data

status, _, data = request("GET", "/v1/models")
models = json.loads(data)
assert models["video"] == "xmem", models
model = models["models"][0]
assert model["architecture"] == "lraspp_mobilenet_v3_large" and model["task"] == "semantic", model
assert [c["id"] for c in model["classes"]] == [0, 1, 2, 3], model["classes"]
assert model["classes"][1]["color"] == [128, 0, 0], model["classes"][1]

# The label PNG: SegKit's own prediction of the run, pixel for pixel.
image = read("image.png")
expected = np.array(Image.open(f"{fixtures}/expected.png"))
status, headers, data = request("POST", "/v1/segment?format=png", image, {"Content-Type": "image/png"})
assert status == 200 and headers["Content-Type"] == "image/png", (status, data[:200])
labels = Image.open(io.BytesIO(data))
assert labels.mode == "P", labels.mode
labels = np.array(labels)
assert labels.shape == expected.shape and (labels == expected).all(), "the label PNG differs from the prediction"
assert len(np.unique(labels)) >= 2, "the fixture should show several classes"

# The same through a form, with the model named.
boundary = "segkitboundary7"
form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{model['name']}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
        f"Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
status, _, data = request("POST", "/v1/segment", form, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
assert status == 200 and (np.array(Image.open(io.BytesIO(data))) == expected).all(), status

# JSON: COCO run-length masks that pycocotools decodes to the label map.
status, _, data = request("POST", "/v1/segment?format=json", image, {"Content-Type": "image/png"})
assert status == 200, data
summary = json.loads(data)
assert (summary["height"], summary["width"]) == expected.shape, summary
assert sum(c["pixels"] for c in summary["classes"]) == expected.size
for entry in summary["masks"]:
    decoded = coco_mask.decode({"size": entry["rle"]["size"], "counts": entry["rle"]["counts"].encode()})
    assert (decoded.astype(bool) == (expected == entry["id"])).all(), entry["id"]
    reencoded = coco_mask.encode(np.asfortranarray((expected == entry["id"]).astype(np.uint8)))
    assert reencoded["counts"].decode() == entry["rle"]["counts"], "pycocotools writes the same counts"
for kind, mime in [("color", "image/png"), ("overlay", "image/jpeg")]:
    status, headers, data = request("POST", f"/v1/segment?format={kind}", image, {"Content-Type": "image/png"})
    assert status == 200 and headers["Content-Type"] == mime, (kind, status)
    assert Image.open(io.BytesIO(data)).size == (expected.shape[1], expected.shape[0])
# The request's own scales and flip (several passes) still give a label map of the image's size.
status, _, data = request("POST", "/v1/segment?scales=0.75,1&flip=true", image, {"Content-Type": "image/png"})
assert status == 200 and np.array(Image.open(io.BytesIO(data))).shape == expected.shape

# Refusals, each in words, the service serving on.
status, _, data = request("POST", "/v1/segment?model=nope", image)
expect_error(status, data, 404, "no model")
status, _, data = request("POST", "/v1/segment?format=gif", image)
expect_error(status, data, 400, "format must be")
status, _, data = request("POST", "/v1/segment", b"not an image at all")
expect_error(status, data, 422, "not a JPEG or PNG")
status, _, data = request("POST", "/v1/segment", read("big_header.png"))
expect_error(status, data, 413, "100000×100000", cap="max-image-pixels")
status, _, data = request("POST", "/v1/segment", b"x" * (2 << 20))
expect_error(status, data, 413, "max-body-bytes", cap="max-body-bytes")
truncated = form[: len(form) // 2]
status, _, data = request("POST", "/v1/segment", truncated, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
expect_error(status, data, 400, "truncated")
status, _, data = request("GET", "/healthz", auth=False)
assert status == 200

# A session: frames from a zip, the first frame's mask, propagation streamed to the end.
frames = read("frames.zip")
status, _, data = request("POST", "/v1/sessions", frames, {"Content-Type": "application/zip"})
assert status == 201, data
session = json.loads(data)
sid, count = session["id"], session["frames"]
assert count == 6 and session["annotated"] == [], session
status, headers, data = request("GET", f"/v1/sessions/{sid}/frames/0")
assert status == 200 and headers["Content-Type"] in ("image/jpeg", "image/png")
status, _, data = request("POST", f"/v1/sessions/{sid}/propagate")
expect_error(status, data, 422, "has no mask yet")
first = read("first_mask.png")
status, _, data = request("PUT", f"/v1/sessions/{sid}/masks/0", first, {"Content-Type": "image/png"})
assert status == 200 and json.loads(data)["annotated"] == [0], data
# One object through its RLE, as the page sends it: object 3 painted over a corner.
h, w = session["height"], session["width"]
corner = np.zeros((h, w), np.uint8)
corner[:4, :5] = 1
rle = coco_mask.encode(np.asfortranarray(corner))
body = json.dumps({"object": 3, "rle": {"size": [h, w], "counts": rle["counts"].decode()}}).encode()
status, _, data = request("PUT", f"/v1/sessions/{sid}/masks/0", body, {"Content-Type": "application/json"})
assert status == 200, data
status, _, data = request("GET", f"/v1/sessions/{sid}/masks/0")
mask0 = np.array(Image.open(io.BytesIO(data)))
assert (mask0[:4, :5] == 3).all() and set(np.unique(mask0)) >= {0, 3}, np.unique(mask0)
status, _, data = request("PUT", f"/v1/sessions/{sid}/masks/0?object=..%2Fx", first, {"Content-Type": "image/png"})
expect_error(status, data, 400, "object must be an id")
status, _, data = request("PUT", f"/v1/sessions/{sid}/masks/99", first, {"Content-Type": "image/png"})
expect_error(status, data, 404, "no frame")
status, _, data = request("GET", "/v1/sessions/..%2F..%2Fetc/frames/0")
assert status == 404, (status, data)

connection = http.client.HTTPConnection(host, port, timeout=300)
connection.request("POST", f"/v1/sessions/{sid}/propagate?from=0&direction=forward", headers={"Authorization": "Bearer " + token})
response = connection.getresponse()
assert response.status == 200 and response.getheader("Content-Type") == "application/x-ndjson"
lines = [json.loads(line) for line in response.read().decode().splitlines()]
connection.close()
assert lines[-1] == {"end": "done"}, lines[-1]
assert [line["frame"] for line in lines[:-1]] == list(range(count)), lines
assert all(line["total"] == count for line in lines[:-1])
assert set(lines[0]["objects"]) >= {"3"}, lines[0]
status, _, data = request("GET", f"/v1/sessions/{sid}")
assert json.loads(data)["segmented"] == list(range(count)), data
last = np.array(Image.open(io.BytesIO(request("GET", f"/v1/sessions/{sid}/masks/{count - 1}")[2])))
assert last.shape == (h, w)

# Cancelled: the stream ends with "cancelled" after at most a frame more.
connection = http.client.HTTPConnection(host, port, timeout=300)
connection.request("POST", f"/v1/sessions/{sid}/propagate?from=0", headers={"Authorization": "Bearer " + token})
response = connection.getresponse()
first_line = json.loads(response.readline())
assert first_line["frame"] == 0, first_line
status, _, data = request("DELETE", f"/v1/sessions/{sid}/propagate")
assert status == 200 and json.loads(data)["cancelled"] is True, data
rest = [json.loads(line) for line in response.read().decode().splitlines()]
connection.close()
assert rest[-1] == {"end": "cancelled"} and len(rest) <= count - 1, rest

# Backward from the last frame, its mask the propagated one.
status, _, data = request("POST", f"/v1/sessions/{sid}/propagate?from={count - 1}&direction=backward")
lines = [json.loads(line) for line in data.decode().splitlines()]
assert status == 200 and [l["frame"] for l in lines[:-1]] == list(reversed(range(count))) and lines[-1] == {"end": "done"}, lines

# The masks in DAVIS's layout.
status, headers, data = request("GET", f"/v1/sessions/{sid}/result?format=davis")
assert status == 200 and headers["Content-Type"] == "application/zip"
archive = zipfile.ZipFile(io.BytesIO(data))
assert sorted(archive.namelist()) == [f"{sid}/{t:05d}.png" for t in range(count)], archive.namelist()
assert Image.open(archive.open(f"{sid}/00000.png")).mode == "P"
status, headers, data = request("GET", f"/v1/sessions/{sid}/result?format=video")
assert status == 200 and headers["Content-Type"] == "video/mp4" and data[4:8] == b"ftyp", data[:16]

# A zip bomb: a small zip whose frames would unpack past the session cap.
bomb = io.BytesIO()
with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("00000.png", b"\0" * (3 << 20))
status, _, data = request("POST", "/v1/sessions", bomb.getvalue(), {"Content-Type": "application/zip"})
expect_error(status, data, 413, "max-session-bytes", cap="max-session-bytes")

# Ended: DELETE removes it.
status, _, _ = request("DELETE", f"/v1/sessions/{sid}")
assert status == 204
status, _, data = request("GET", f"/v1/sessions/{sid}")
expect_error(status, data, 404, "no session")

# The counters saw all of it.
status, _, data = request("GET", "/metrics")
text = data.decode()
assert 'segkit_requests_total{route="/v1/segment",status="200"}' in text, text
assert 'segkit_errors_total{kind="too_large"}' in text and "segkit_batch_size_count" in text, text
print("api: all checks passed")
