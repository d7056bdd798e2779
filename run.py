#!/usr/bin/env python
"""SCONE's run.py, as Pippin calls it: `python run.py --config_path PIP_x.yml`.

Writes `<output_path>/job.slurm`, submits it as one Slurm job (`sbatch --parsable`) and
returns at once; the job (heatmaps, then train or predict) writes `<output_path>/done.txt`.
Needs only the standard library and PyYAML: Pippin runs it with its own Python. See
scone_assets/pippin/submit.py and README.md, "Using it from Pippin".
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scone_assets.pippin.submit import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
