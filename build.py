#!/usr/bin/env python3
"""Build the VGG16 Atlas: the command line of generator.cli (also installed as `vgg16-atlas`).

    python build.py --help
"""

import sys

from generator.cli import main

if __name__ == "__main__":
    sys.exit(main())
