"""`python -m smolkit train {sft,dpo} --config FILE`: see smolkit.train."""

import sys

from smolkit.train import main

sys.exit(main())
