import sys

from afflux.cli.main import main

sys.exit(main())
