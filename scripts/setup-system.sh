#!/usr/bin/env bash
# Installs the Debian packages SegKit's data layer builds against: libpng and
# libjpeg-turbo (image codecs), OpenCV's video module (DIS optical flow) and
# ffmpeg (video files), and Gloo's headers, which libtorch's process-group header
# includes (libtorch carries its own compiled Gloo), and Chromium with its driver (the
# service's page tested in a real browser). Versions are those of the Debian release the machine
# runs (bookworm), which only receives security fixes.
set -euo pipefail
packages=(pkg-config libpng-dev libjpeg62-turbo-dev libopencv-video-dev ffmpeg libgloo-dev chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "system: packages present"; exit 0; fi
echo "system: installing ${missing[*]}"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system: ready"
