#!/usr/bin/env bash
# The recipe and the ablation on a small CPU machine: after train-init (all threads) and
# cluster, the remaining steps run as two single-thread lanes side by side, which gets more
# image passes per second from 2 cores than one 2-thread process. Every step resumes, so the
# script can simply be run again after an interruption.
#   training/parallel.sh CONFIG [recipe|ablation|all]     (default: all)
set -euo pipefail
cfg=${1:?usage: training/parallel.sh CONFIG [recipe|ablation|all]}
what=${2:-all}
cd "$(dirname "$0")/.."
py=/usr/bin/python3
t() { "$py" -m training "$@" --config "$cfg"; }

t train-init
t cluster
# lane 1: the shipped SW-CNN, then help with the individual models; lane 2: individual models
( t train-swcnn --variant I-D-C --threads 1 && t train-individual --threads 1 ) &
l1=$!
t train-individual --threads 1 &
l2=$!
wait $l1 $l2
t evaluate --variant I-D-C --threads 2
t export --variant I-D-C
[ "$what" = recipe ] && exit 0

# ablation variants, two lanes taking variants off one list
mapfile -t variants < <("$py" -c "
import sys; sys.path.insert(0, '.')
from training import config as C
print('\n'.join(C.section(C.load('$cfg'), 'swcnn').get('ablation') or []))")
lane() {
    local i
    for ((i = $1; i < ${#variants[@]}; i += 2)); do
        t train-swcnn --variant "${variants[$i]}" --threads 1
        t evaluate --variant "${variants[$i]}" --threads 1
    done
}
lane 0 & a=$!
lane 1 & b=$!
wait $a $b
t ablation --report-only
