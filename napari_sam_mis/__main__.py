import sys

from napari_sam_mis.cli import main

sys.exit(main())
