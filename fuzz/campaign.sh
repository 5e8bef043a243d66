#!/bin/sh
# Runs every atheris target for SECONDS (default 90) each, two at a time; logs in fuzz/logs/.
# Summary line per target: inputs tried, crashes (files in fuzz/crashes/), final cov/ft.
cd "$(dirname "$0")/.." || exit 1
T=${1:-90}
mkdir -p fuzz/logs
run() { .venv/bin/python fuzz/run_fuzz.py "$1" -max_total_time="$T" -print_final_stats=1 > "fuzz/logs/$1.log" 2>&1; }
run codec & run datapath & wait
run flow & run script & wait
run pcap & run protocol & wait
for t in codec datapath flow script pcap protocol; do
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/logs/$t.log" | grep -o '[0-9]*$')
  cov=$(grep -E '^#[0-9]+' "fuzz/logs/$t.log" | grep -o 'cov: [0-9]* ft: [0-9]*' | tail -1)
  crashes=$(ls fuzz/crashes 2>/dev/null | grep -c "^$t-")
  echo "$t: inputs tried ${runs:-?}, crashes $crashes, $cov"
done
