#!/usr/bin/env bash
# SegKit's main job, on built-in data, on the CPU:
# - images: generate the synthetic semantic dataset, train a small model, evaluate
#   it, write predictions (label PNGs, colour masks, overlays);
# - video (OSVOS): generate synthetic DAVIS 2017 sequences, train a parent network,
#   fine-tune it on each validation sequence's first frame and segment the rest,
#   score the results as davis2017-evaluation does, and segment one sequence as a
#   video file from its first mask into an overlay video;
# - video (XMem): train XMem on the same sequences' clips, segment and score them;
# - the service: segkit serve started, one image segmented through it, stopped;
# - video semantic segmentation (DVSNet): generate synthetic street snippets and flow
#   pairs, train the segmentation path, the thin FlowNetS (on true flow, then as the
#   warp path), the decision network, and sweep the policies (table and plot).
# Everything lands in runs/demo/ (git-ignored); a second run starts it afresh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup-system.sh
bash scripts/setup-libtorch.sh
swift build -c release --product segkit
segkit="$(swift build -c release --show-bin-path)/segkit"
"$segkit" info

demo="$root/runs/demo"
rm -rf "$demo"
mkdir -p "$demo"
"$segkit" data synth --kind semantic --out "$demo/data" --seed 0 --train 2000 --val 100
"$segkit" train --config configs/demo.yaml --set "dataset_dir=$demo/data" --run "$demo/train" --plain
"$segkit" eval --run "$demo/train" --json "$demo/eval.json"
mkdir -p "$demo/val-images"
while read -r name; do cp "$demo/data/JPEGImages/$name.jpg" "$demo/val-images/"; done \
  < <(head -n 8 "$demo/data/ImageSets/Segmentation/val.txt")
"$segkit" predict --run "$demo/train" --input "$demo/val-images" --out "$demo/predictions" --color --overlay
"$segkit" export --run "$demo/train" --out "$demo/model.onnx" --height 128 --width 128 --argmax


# Video object segmentation: parent training, one-shot fine-tuning per object, DAVIS scores.
"$segkit" data synth --kind video --out "$demo/davis" --seed 0
"$segkit" vos train --config configs/osvos-parent-cpu.yaml --set "dataset_dir=$demo/davis" --run "$demo/parent" --plain
"$segkit" vos segment --parent "$demo/parent" --davis "$demo/davis" --year 2017 --out "$demo/vos-results" --plain
"$segkit" vos eval --results "$demo/vos-results" --davis "$demo/davis" --year 2017 --json "$demo/vos-eval.json"
# The last validation sequence as a video file, segmented from its first frame's mask.
clip="$(tail -n 1 "$demo/davis/ImageSets/2017/val.txt")"
ffmpeg -loglevel error -y -framerate 12 -i "$demo/davis/JPEGImages/480p/$clip/%05d.jpg" -pix_fmt yuv420p "$demo/$clip.mp4"
"$segkit" vos segment --parent "$demo/parent" --video "$demo/$clip.mp4" \
  --first-mask "$demo/davis/Annotations/480p/$clip/00000.png" --out "$demo/video"

# XMem: trained on the same synthetic clips (about 45 minutes on 2 cores), no fine-tuning
# per video; the run's model.json carries its inference settings to vos segment.
"$segkit" train --config configs/xmem-cpu.yaml --set "dataset_dir=$demo/davis" --run "$demo/xmem" --plain
"$segkit" vos segment --method xmem --weights "$demo/xmem/model.safetensors" --davis "$demo/davis" --year 2017 \
  --out "$demo/xmem-results" --plain
"$segkit" vos eval --results "$demo/xmem-results" --davis "$demo/davis" --year 2017 --json "$demo/xmem-eval.json"

# The service: the U-Net and XMem served for a few seconds, one image segmented through
# it (the same bytes as predict's label PNG), then stopped as Ctrl-C stops it.
"$segkit" serve --run "$demo/train" --vos "$demo/xmem" --port 0 --folder "$demo/serve" > "$demo/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 600); do grep -q '^serving' "$demo/serve.log" && break; sleep 0.1; done
url="$(sed -n 's/^serving .* on \(http[^ ]*\)\/$/\1/p' "$demo/serve.log")"
first="$(ls "$demo/val-images" | head -n 1)"
curl -sf --data-binary "@$demo/val-images/$first" "$url/v1/segment?format=png" -o "$demo/served.png"
kill -INT "$server"
wait "$server"
cmp "$demo/served.png" "$demo/predictions/${first%.jpg}.png"
echo "served $first through $url: the same label PNG as segkit predict's"

# Video semantic segmentation with dynamic key frames.
"$segkit" data synth --kind street --out "$demo/street" --seed 0
"$segkit" data synth --kind flow --out "$demo/chairs" --seed 0
"$segkit" train --config configs/street-cpu.yaml --set "dataset_dir=$demo/street" --run "$demo/street-seg" --plain
"$segkit" train --config configs/flownets-thin-synthetic.yaml --set "dataset_dir=$demo/chairs" --run "$demo/flow" --plain
"$segkit" train --config configs/flownets-thin-warp-street.yaml --set "dataset_dir=$demo/street" \
  --set "initial_checkpoint=$demo/flow/model.safetensors" --set "segmentation_run=$demo/street-seg" --run "$demo/warp" --plain
for split in train val; do
  "$segkit" dvs features --run "$demo/street-seg" --flow "$demo/warp" --cityscapes "$demo/street" --split "$split" \
    --out "$demo/dvs/$split.safetensors"
done
"$segkit" dvs train-decision --train "$demo/dvs/train.safetensors" --val "$demo/dvs/val.safetensors" --out "$demo/dvs" --epochs 50
"$segkit" dvs eval --run "$demo/street-seg" --flow "$demo/warp" --decision "$demo/dvs/decision.safetensors" \
  --cityscapes "$demo/street" --sweep --out "$demo/dvs/sweep"
street="$(ls "$demo/street/leftImg8bit_sequence/val/synth" | head -n 1)"
ffmpeg -loglevel error -y -framerate 15 -pattern_type glob -i "$demo/street/leftImg8bit_sequence/val/synth/${street%_000000_leftImg8bit.png}_*_leftImg8bit.png" \
  -pix_fmt yuv420p "$demo/street.mp4"
"$segkit" dvs video "$demo/street.mp4" --run "$demo/street-seg" --flow "$demo/warp" --decision "$demo/dvs/decision.safetensors" \
  --policy balanced --boxes car,person --alpha 0.4 --out "$demo/dvs/video"

miou="$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["mIoU"], 4))' "$demo/eval.json")"
jf="$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["global"]["J&F-Mean"], 4))' "$demo/vos-eval.json")"
xmem_jf="$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["global"]["J&F-Mean"], 4))' "$demo/xmem-eval.json")"
echo
echo "The data are synthetic (textured shapes and moving objects drawn by segkit data synth)."
echo "run folders:  $demo/train, $demo/parent, $demo/xmem   (tensorboard --logdir $demo)"
echo "evaluation:   $demo/eval.json, $demo/vos-eval.json, $demo/xmem-eval.json"
echo "predictions:  $demo/predictions (labels, colour masks, overlays)"
echo "ONNX:         $demo/model.onnx (the trained model for ONNX Runtime, 128×128, with a labels output)"
echo "video:        $demo/vos-results (DAVIS results layout), $demo/video/${clip}_overlay.mp4"
echo "DVSNet:       $demo/dvs/sweep/sweep.csv, $demo/dvs/sweep/sweep.png, $demo/dvs/video/street_overlay.mp4"
echo "J&F on the synthetic DAVIS validation split: OSVOS $jf, XMem $xmem_jf"
echo "mIoU on the synthetic validation split: $miou"
