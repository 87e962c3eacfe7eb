#!/usr/bin/env bash
# System packages the project needs beyond pip, installed when missing and running as root; otherwise says how.
#  - the builtin offline datasets (required: fails without them): Debian's `fortunes` + `fortunes-min` (fortunes),
#    `dataset-fashion-mnist` (fashion_mnist) and `espeak-ng`, which speaks the spoken_words clips (and the video's
#    narration).
#  - the LaTeX toolchain and poppler-utils: scripts/build_paper.py and its tests (pdflatex, bibtex, pdfinfo,
#    pdftotext); only the paper needs them, so without root they are a warning, not a failure.
#  - ffmpeg: scripts/make_video.py and its tests (encoding, ffprobe); a warning without root.
set -euo pipefail
REQUIRED=(fortunes fortunes-min dataset-fashion-mnist espeak-ng)
PAPER=(texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended poppler-utils)
VIDEO=(ffmpeg)

missing_of() {
  local pkg
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || echo "$pkg"
  done
}
mapfile -t missing_required < <(missing_of "${REQUIRED[@]}")
mapfile -t missing_paper < <(missing_of "${PAPER[@]}")
mapfile -t missing_video < <(missing_of "${VIDEO[@]}")
missing=("${missing_required[@]}" "${missing_paper[@]}" "${missing_video[@]}")
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
if [ ${#missing_paper[@]} -gt 0 ]; then
  echo "warning: building the paper (scripts/build_paper.py, tests/test_paper.py) needs the Debian packages" \
    "${missing_paper[*]}: run \`sudo apt-get install -y ${missing_paper[*]}\`" >&2
fi
if [ ${#missing_video[@]} -gt 0 ]; then
  echo "warning: the presentation video (scripts/make_video.py, tests/test_video.py) needs the Debian packages" \
    "${missing_video[*]}: run \`sudo apt-get install -y ${missing_video[*]}\`" >&2
fi
if [ ${#missing_required[@]} -gt 0 ]; then
  echo "error: the builtin datasets (fortunes, fashion_mnist, spoken_words) need the Debian packages" \
    "${missing_required[*]}: run \`sudo apt-get install -y ${missing_required[*]}\`" >&2
  exit 1
fi
