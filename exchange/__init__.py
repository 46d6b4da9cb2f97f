"""The DFPS -> DPS exchange's shared code, one module per concern.

`util.py` at the top of the project is the table of contents: it re-exports what the two
scripts use and says where each piece lives. Lower layers never import higher ones:

    errors -> config, periods -> files, frames, excel -> records -> status, harness
    database, sftp, mail                (I/O, each on its own)
    wrangle, answer, reconcile, reports (the contract's rules, pure logic on DataFrames)

Nothing here runs at import time.
"""

__version__ = "0.2.0"
