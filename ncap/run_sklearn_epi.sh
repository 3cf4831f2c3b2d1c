#!/bin/bash
# The sklearn-epi analysis script: run_main_cli.sh calls it with no arguments
# after registering the job's dataset, config and result folder.
# sklearn_epi_job.py does the work; this script moves files in and out, and
# uploads every result file whatever the fit's exit code, then exits with it.
set -u
here="$(cd "$(dirname "$0")" && pwd)"

neurocaas-contrib workflow get-data || exit 1
neurocaas-contrib workflow get-config || exit 1
datapath="$(neurocaas-contrib workflow get-datapath)"
configpath="$(neurocaas-contrib workflow get-configpath)"
resultpath="$(neurocaas-contrib workflow get-resultpath-tmp)"
# This job's process_results on S3: where earlier jobs are looked for, to resume.
uploads="$(dirname "$(neurocaas-contrib workflow get-resultpath -l "$resultpath")")"

python "$here/sklearn_epi_job.py" run "$datapath" "$configpath" "$resultpath" \
    --results-uri "$uploads" &
job=$!
# A stop (the instance shutting down) reaches the fit, which checkpoints and exits 75.
trap 'kill -TERM "$job" 2>/dev/null' TERM INT
code=0
wait "$job" || code=$?
while kill -0 "$job" 2>/dev/null; do  # woken by the trap: wait for the job itself
    code=0
    wait "$job" || code=$?
done

for file in "$resultpath"/*; do
    [ -f "$file" ] && neurocaas-contrib workflow put-result -r "$file"
done
exit "$code"
