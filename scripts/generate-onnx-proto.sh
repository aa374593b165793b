#!/usr/bin/env bash
# Regenerates Sources/SegKitExport/Generated/onnx.pb.swift from onnx.proto with
# swift-protobuf's generator. Not part of the build: the generated file is committed.
# Needs protoc (Debian's protobuf-compiler) and a copy of swift-protobuf at the
# version Package.swift names (SWIFT_PROTOBUF, a git URL or folder).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/versions.sh"
swift_protobuf="${SWIFT_PROTOBUF:-https://github.com/apple/swift-protobuf}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q --branch 1.39.0 "$swift_protobuf" "$work/swift-protobuf"
(cd "$work/swift-protobuf" && swift build -c release --product protoc-gen-swift >/dev/null)
python3 -m pip download --quiet --no-deps "onnx==$ONNX_VERSION" -d "$work"
(cd "$work" && python3 -m zipfile -e onnx-*.whl wheel >/dev/null)
protoc --plugin=protoc-gen-swift="$work/swift-protobuf/.build/release/protoc-gen-swift" \
  --swift_out="$root/Sources/SegKitExport/Generated" --swift_opt=Visibility=Public \
  -I "$work/wheel/onnx" "$work/wheel/onnx/onnx.proto"
echo "generated Sources/SegKitExport/Generated/onnx.pb.swift from onnx $ONNX_VERSION"
