"""`python -m nano_forkrl.assignment`: the command line of assignment/cli.py."""
import sys

from nano_forkrl.assignment.cli import main

sys.exit(main())
