import sys

from visplay.cli.main import main

sys.exit(main())
