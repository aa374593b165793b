#!/usr/bin/env python3
"""How much any decision rule could gain over a fixed key schedule on this data.

Reads a decision-sample file of `segkit dvs features --stride 1` (every current frame
from the last down to frame MAX, each paired with the keys 0…MAX frames back, regions
innermost) and replays, per snippet and region, over the frames it covers:
  - a key every n frames (n = 1…MAX+1), and
  - an oracle that knows each frame's true confidence score (the agreement of the warp
    path with segmentation, the quantity DVSNet's decision network predicts) and
    segments when it would fall below a target, as DVSNet's rule does with perfect
    prediction.
Both are scored by the mean confidence score over the frames and their segmentation
steps per frame. If the oracle barely beats the schedule at equal cost, the data leaves
no room for a decision network, however good its prediction.

  Benchmarks/dvs-headroom.py SAMPLES.safetensors REGIONS SNIPPET_FRAMES
Standard library only.
"""
import json, struct, sys
from array import array


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name in ("scores", "distances"):
        entry = header[name]
        assert entry["dtype"] == "F32", f"{name}: {entry['dtype']}"
        begin, end = entry["data_offsets"]
        values = array("f")
        values.frombytes(data[begin:end])
        out[name] = list(values)
    return out


def main():
    path, regions, frames = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    samples = load(path)
    scores, distances = samples["scores"], samples["distances"]
    max_distance = int(max(distances))
    keys = max_distance + 1
    currents = frames - max_distance  # current frames max_distance…frames−1, listed last first
    per_snippet = currents * keys * regions
    assert len(scores) % per_snippet == 0, f"{len(scores)} samples are not snippets of {currents}×{keys}×{regions}"
    snippets = len(scores) // per_snippet
    # score[s][r][t][d]: snippet s, region r, frame t (0 = frame max_distance), key d frames back.
    table = [[[[0.0] * keys for _ in range(currents)] for _ in range(regions)] for _ in range(snippets)]
    i = 0
    for s in range(snippets):
        for c in range(currents):
            t = currents - 1 - c
            for d in range(keys):
                assert int(distances[i]) == d, "not a --stride 1 file (distances out of order)"
                for r in range(regions):
                    table[s][r][t][d] = scores[i]
                    i += 1

    def replay(decide):
        total, steps, count = 0.0, 0, 0
        for s in range(snippets):
            for r in range(regions):
                age = None
                for t in range(currents):
                    if age is None or age + 1 > max_distance or decide(table[s][r][t], age + 1, t):
                        age, score = 0, 100.0
                        steps += 1
                    else:
                        age += 1
                        score = table[s][r][t][age]
                    total += score
                    count += 1
        return total / count, steps / count

    def every(n):  # averaged over the schedule's phases, as `dvs eval` averages --frames-before
        runs = [replay(lambda row, age, t, p=p: (t + p) % n == 0) for p in range(n)]
        return sum(r[0] for r in runs) / n, sum(r[1] for r in runs) / n

    rows = [(f"key every {n}", *every(n)) for n in range(1, keys + 1)]
    all_scores = sorted(x for x in scores)
    for q in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        target = all_scores[int(q * (len(all_scores) - 1))]
        rows.append((f"oracle target {target:.1f}", *replay(lambda row, age, t, target=target: row[age] < target)))
    print(f"{snippets} snippets × {regions} regions × frames {max_distance}…{frames - 1} of {path}")
    print("| policy | mean confidence score | segmentation steps per frame |")
    print("| --- | --- | --- |")
    for name, score, cost in rows:
        print(f"| {name} | {score:.2f} | {cost:.3f} |")
    # The schedules' frontier, linear between neighbouring intervals (alternating two
    # intervals reaches any cost between them), read at each oracle's cost.
    fixed = sorted((cost, score) for name, score, cost in rows if name.startswith("key"))

    def frontier(cost):
        for (c0, s0), (c1, s1) in zip(fixed, fixed[1:]):
            if c0 <= cost <= c1:
                return s0 + (s1 - s0) * (cost - c0) / (c1 - c0) if c1 > c0 else max(s0, s1)
        return None

    print("\n| oracle | cost | score | fixed intervals at that cost | difference |")
    print("| --- | --- | --- | --- | --- |")
    for name, score, cost in rows:
        if name.startswith("oracle") and (reference := frontier(cost)) is not None:
            print(f"| {name} | {cost:.3f} | {score:.2f} | {reference:.2f} | {score - reference:+.2f} |")

if __name__ == "__main__":
    main()
