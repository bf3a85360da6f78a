"""`python -m xai_core ...`: see xai_core.cli."""

from .cli import main

if __name__ == "__main__":  # importing the module (as the layer test does) runs nothing
    raise SystemExit(main())
