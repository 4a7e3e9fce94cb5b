#!/usr/bin/env bash
# Run HERE (a machine with internet), in any directory: puts into the repository root what a
# GPU machine without internet needs beside the working tree to run the workflow with
# gpu/run_full_protocol.sh:
#   .whl/    the wheels (cp312, manylinux x86_64) of the packages that machine lacks
#   .mnist/  the four MNIST .gz files
# Both are added to .git/info/exclude, so they travel only when a `carry` list names them.
# Then it checks offline that the wheels complete Snakemake and skorch on top of the packages
# that machine has, and prints the sizes.
#
#   bash gpu/prepare_carry.sh [--dry-run] [--mnist-src DIR] [--python PY]
#
# --dry-run      print the plan and the checks that need no network; download and copy nothing
# --mnist-src    folder with the four MNIST .gz files (default: ../shared/data/mnist beside the
#                checkout, or $MNIST_DIR)
# --python       the Python whose pip downloads (default: python3; any version: the wheels are
#                chosen for Python 3.12 whatever runs pip)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
MNIST_SRC=${MNIST_DIR:-$REPO/../shared/data/mnist}
DRY_RUN=0

while [[ $# -gt 0 ]]; do
    case $1 in
        --dry-run) DRY_RUN=1 ;;
        --mnist-src) MNIST_SRC=$2; shift ;;
        --python) PY=$2; shift ;;
        -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "prepare_carry: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

# What the workflow needs that the GPU machine's image lacks: Snakemake 9.27.1 and skorch 1.4.0
# (the versions of requirements.txt) and their dependencies, minus what the image has (its
# package list: the workplace's device notes, KINDS.md, "Python packages already there"; that
# list names torch, numpy, scipy, pandas, scikit-learn, matplotlib, pyyaml, jinja2, requests,
# psutil, tabulate, tqdm, wrapt, attrs, ... but not jsonschema, pydantic or sqlalchemy).
# Not carried: pulp (16 MB, with its CBC binaries), which only Snakemake's ILP scheduler uses;
# run_full_protocol.sh runs the greedy scheduler, and Snakemake falls back to it without pulp.
CARRIED=(
    snakemake==9.27.1
    skorch==1.4.0
    annotated-types==0.8.0
    argparse-dataclass==2.0.0
    conda-inject==1.3.2
    configargparse==1.9.0
    docutils==0.22.4
    dpath==2.2.0
    fastjsonschema==2.22.3
    gitdb==4.0.12
    gitpython==3.2.1
    greenlet==3.5.6
    humanfriendly==10.0
    immutables==0.21
    jsonschema==4.26.0
    jsonschema-specifications==2025.9.1
    jupyter-core==5.9.1
    nbformat==5.11.1
    platformdirs==4.14.8
    pydantic==2.14.4
    pydantic-core==2.50.5
    referencing==0.37.0
    rpds-py==2026.9.1
    smart-open==7.7.1
    smmap==5.0.3
    snakemake-interface-common==1.23.0
    snakemake-interface-executor-plugins==9.4.0
    snakemake-interface-logger-plugins==2.1.0
    snakemake-interface-report-plugins==1.3.0
    snakemake-interface-scheduler-plugins==2.0.2
    snakemake-interface-storage-plugins==4.4.1
    sqlalchemy==2.0.58
    sqlmodel==0.0.37
    tenacity==9.2.1
    throttler==1.2.3
    traitlets==5.16.1
    typing-inspection==0.4.5
    yte==1.9.4
    # Version guards: the image has these, at versions nobody here has read; Snakemake wants
    # packaging<26 and pydantic-core typing-extensions>=4.16. Carried (pure Python, 0.1 MB),
    # they come first on PYTHONPATH in the workflow's processes only.
    packaging==25.0
    typing-extensions==4.16.0
)
# Published as a source archive only (pure Python): built into a wheel here.
BUILT=(connection-pool==0.0.3)
# Packages of the image (KINDS.md) that the carried ones require, with versions that satisfy
# them, for the offline resolution check below only (stand-ins: nothing of them is carried).
# Their real versions there are checked at run time by run_full_protocol.sh.
PRESENT=(
    attrs==26.1.0 certifi==2026.10.19 charset-normalizer==3.5.3 cloudpickle==3.1.3
    idna==3.20 jinja2==3.1.6 joblib==1.6.0 markupsafe==3.0.4 narwhals==2.29.0 numpy==2.5.2
    psutil==7.2.2 pyyaml==6.0.4 requests==2.34.2 scikit-learn==1.9.1 scipy==1.17.1
    tabulate==0.10.0 threadpoolctl==3.8.0 tqdm==4.70.1 urllib3==2.8.0 wrapt==2.5.2
)
# Required by snakemake but neither carried nor there (see above): a stand-in in the checks.
LEFT_OUT=(pulp==3.3.2)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64
    manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)
MNIST_FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

WHL=$REPO/.whl
MNIST=$REPO/.mnist
cd "$REPO"

echo "wheels to carry ($((${#CARRIED[@]} + ${#BUILT[@]}))): ${CARRIED[*]} ${BUILT[*]} (built here)"
for name in "${MNIST_FILES[@]}"; do
    [[ -f $MNIST_SRC/$name ]] || { echo "prepare_carry: $MNIST_SRC/$name not found" >&2; exit 1; }
done
echo "MNIST from $MNIST_SRC"
if ((DRY_RUN)); then
    echo "dry run: would download into $WHL, copy the MNIST files into $MNIST and add"
    echo "/.whl/ and /.mnist/ to .git/info/exclude"
    exit 0
fi

# A fresh folder each time: two versions of one package would stop the install there.
rm -rf "$WHL.new"
mkdir -p "$WHL.new"
platform_args=()
for platform in "${PLATFORMS[@]}"; do platform_args+=(--platform "$platform"); done
"$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
    "${platform_args[@]}" -d "$WHL.new" "${CARRIED[@]}"
"$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$WHL.new" "${BUILT[@]}"
for wheel in "$WHL.new"/*.whl; do  # what is built here must run there: pure Python only
    case $wheel in
        *-py3-none-any.whl | *-py2.py3-none-any.whl | *-cp312-*manylinux*x86_64*.whl) ;;
        *) echo "prepare_carry: $wheel would not install on CPython 3.12 x86_64" >&2; exit 1 ;;
    esac
done
rm -rf "$WHL"
mv "$WHL.new" "$WHL"

mkdir -p "$MNIST"
for name in "${MNIST_FILES[@]}"; do cp "$MNIST_SRC/$name" "$MNIST/$name"; done
chmod u+w "$MNIST"/*

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for line in /.whl/ /.mnist/; do
    grep -qxF "$line" "$exclude" 2>/dev/null || echo "$line" >>"$exclude"
done

# Check 1: every requirement of every carried wheel (on CPython 3.12, Linux x86_64, no extras:
# pip's own resolution below evaluates markers for the Python that runs it) is carried or among
# the image's packages. Then the stand-ins (empty wheels) of the image's packages for check 2.
stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
"$PY" - "$WHL" "$stubs" "${PRESENT[@]}" "${LEFT_OUT[@]}" <<'PY'
import re
import sys
import zipfile
from pathlib import Path

from pip._vendor.packaging.requirements import Requirement

norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
       "implementation_name": "cpython", "platform_python_implementation": "CPython",
       "extra": ""}
present = dict(spec.split("==") for spec in sys.argv[3:])
carried, missing = {}, []
for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    carried[norm(re.search(r"^Name: (.+)$", metadata, re.M).group(1))] = [
        Requirement(line) for line in re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)
    ]
known = {*carried, *map(norm, present)}
for name, requirements in carried.items():
    for requirement in requirements:
        if requirement.marker and not requirement.marker.evaluate(env):
            continue
        if norm(requirement.name) not in known:
            missing.append(f"{name} needs {requirement}")
if missing:
    sys.exit("prepare_carry: neither carried nor on the GPU machine:\n  " + "\n  ".join(missing))
print(f"check 1: the {len(carried)} wheels' requirements are carried, on the GPU machine or left out")
for name, version in present.items():
    stem = f"{name.replace('-', '_')}-{version}"
    with zipfile.ZipFile(Path(sys.argv[2]) / f"{stem}-py3-none-any.whl", "w") as wheel:
        info = f"{stem}.dist-info"
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: stub\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
PY
# Check 2: pip resolves snakemake and skorch offline for CPython 3.12 manylinux from the
# carried wheels plus the stand-ins.
"$PY" -m pip install --dry-run --quiet --disable-pip-version-check --no-index \
    --find-links "$WHL" --find-links "$stubs" --ignore-installed --target "$stubs/target" \
    --python-version 3.12 --implementation cp --abi cp312 --only-binary=:all: \
    "${platform_args[@]}" snakemake==9.27.1 skorch==1.4.0
echo "check 2: pip resolves snakemake==9.27.1 skorch==1.4.0 offline for cp312 manylinux"

echo
echo "carried wheels:"
ls -1 "$WHL"
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f 1)
whl_bytes=$(du -sb "$WHL" | cut -f 1)
mnist_bytes=$(du -sb "$MNIST" | cut -f 1)
total=$((tree_bytes + whl_bytes + mnist_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo
echo ".whl/ $(mib "$whl_bytes") ($(find "$WHL" -type f -name '*.whl' | wc -l) wheels), .mnist/ $(mib "$mnist_bytes"), working tree $(mib "$tree_bytes")"
echo "total that travels with carry [.whl, .mnist]: $(mib "$total") of the 64 MiB limit"
if ((total > 56 * 1048576)); then
    echo "prepare_carry: WARNING: less than 8 MiB left under the 64 MiB limit" >&2
fi
