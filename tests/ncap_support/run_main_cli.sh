#!/bin/bash
# Test stand-in of neurocaas_contrib's run_main_cli.sh: the same workflow calls
# (without its conda activation), with the job directory in $HOME/contribdata.
# $1 bucket, $2 dataset key, $3 result folder, $4 config key, $5 analysis script.
mkdir -p "$HOME/contribdata"
neurocaas-contrib workflow initialize-job -p "$HOME/contribdata"

neurocaas-contrib workflow register-dataset -b "$1" -k "$2"
neurocaas-contrib workflow register-config -b "$1" -k "$4"
neurocaas-contrib workflow register-resultpath -b "$1" -k "$3"

neurocaas-contrib workflow log-command -b "$1" -c "$5" -r "$3"

neurocaas-contrib workflow cleanup
