#!/usr/bin/env bash
# tools/prometheus/rtci-rules.yml: valid rules (promtool check rules) that record and alert as
# rtci-rules.test.yml expects (promtool test rules). Exits 77 (meson: skipped) without promtool.
#
#   tests/prometheus_rules.sh <tools/prometheus folder>
set -u
dir=${1:?tools/prometheus folder}
command -v promtool >/dev/null 2>&1 || { echo "prometheus_rules: skipped: no promtool"; exit 77; }
promtool check rules "$dir/rtci-rules.yml" || exit 1
cd "$dir" && promtool test rules rtci-rules.test.yml
