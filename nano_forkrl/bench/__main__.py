"""`python -m nano_forkrl.bench`: the command line of bench/cli.py."""
from nano_forkrl.bench.cli import main

main()
