#!/usr/bin/env bash
# System packages the project needs beyond pip, installed when missing and running as root; otherwise says how.
#  - the builtin offline datasets (required: fails without them): Debian's `fortunes` + `fortunes-min` (fortunes),
#    `dataset-fashion-mnist` (fashion_mnist) and `espeak-ng`, which speaks the spoken_words clips (and the video's
#    narration).
#  - Debian's package index (`apt-get update`), which the builtin datasets debtags and package_sizes read; container
#    images often ship without it. Downloaded when absent and running as root; a warning otherwise (their tests skip).
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
has_index=0
compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null && has_index=1
[ ${#missing[@]} -eq 0 ] && [ "$has_index" -eq 1 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  if [ ${#missing[@]} -eq 0 ]; then
    echo "downloading Debian's package index (apt-get update) for the builtin datasets debtags and package_sizes"
    # only two builtins need it, so a machine without the network keeps the rest working
    apt-get update -qq || echo "warning: apt-get update failed: debtags and package_sizes stay unavailable" >&2
    exit 0
  fi
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
if [ "$has_index" -eq 0 ]; then
  echo "warning: the builtin datasets debtags and package_sizes read Debian's package index:" \
    "run \`sudo apt-get update\`" >&2
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
