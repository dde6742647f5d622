"""Entry point of ``python -m bench``: the WIW benchmark, or a scenario named first.

``python -m bench [options]`` runs the When I Work benchmark (``bench.run``);
``python -m bench advoware [options]`` runs the Advoware scenario (``bench.advoware``);
``python -m bench temu [options]`` runs the TEMU scenario (``bench.temu``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch on the first argument; exit code of the scenario."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["advoware"]:
        from bench import advoware

        return advoware.main(args[1:])
    if args[:1] == ["temu"]:
        from bench import temu

        return temu.main(args[1:])
    from bench import run

    return run.main(args)


if __name__ == "__main__":
    sys.exit(main())
