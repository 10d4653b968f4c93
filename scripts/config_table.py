"""Write the README's configuration table from ``sluice_common.config.VARIABLES``.

    python scripts/config_table.py          # exit 1 and say so when the README is out of date
    python scripts/config_table.py --write  # rewrite the table in place
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from sluice_common.config import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = re.compile(r"(<!-- config-table:[^\n]*-->\n)(.*?)(<!-- /config-table -->)", re.S)


def rendered(text: str) -> str:
    """``text`` with the table between the markers replaced by the generated one."""
    if not SECTION.search(text):
        raise SystemExit(f"{README}: no <!-- config-table: --> ... <!-- /config-table --> markers")
    return SECTION.sub(lambda m: m.group(1) + markdown_table() + m.group(3), text, count=1)


def main() -> int:
    text = README.read_text()
    fresh = rendered(text)
    if "--write" in sys.argv[1:]:
        README.write_text(fresh)
        return 0
    if fresh != text:
        print("README.md: the configuration table differs from VARIABLES; run `make config-docs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
