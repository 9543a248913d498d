import sys

from heterofl.cli import main

sys.exit(main())
