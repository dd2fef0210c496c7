"""`python -m modelport.cli`: the same command as `modelport`."""

from modelport.cli import main

main()
