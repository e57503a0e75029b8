"""Benchmark: `mailcast check` and `preview --out` on 10,000 rows against a bare loop, and `--help`.

Run: python benchmarks/check.py   (needs the package installed; prints ratios measured in this run)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import MAILCAST, best, compile_mailcast, run_process, write_campaign

ROWS = 10_000

BARE_LOOP = """
import csv, sys
from email_validator import validate_email
from jinja2 import Environment, StrictUndefined
folder = sys.argv[1]
html_env = Environment(undefined=StrictUndefined, autoescape=True)
text_env = Environment(undefined=StrictUndefined)
html = html_env.from_string(open(folder + "/body.html", encoding="utf-8").read())
text = text_env.from_string(open(folder + "/body.txt", encoding="utf-8").read())
subject = text_env.from_string("{{ first_name }}, our spring picks")
with open(folder + "/recipients.csv", encoding="utf-8", newline="") as handle:
    for row in csv.DictReader(handle):
        validate_email(row["email"], check_deliverability=False)
        subject.render(row); html.render(row); text.render(row)
"""


def _create_files(folder: Path, count: int) -> float:
    """Seconds to create `count` files of a message's size: the floor under `preview --out`."""
    folder.mkdir()
    data = b"x" * 1500
    start = time.perf_counter()
    for index in range(count):
        (folder / f"{index:05d}.eml").write_bytes(data)
    return time.perf_counter() - start


def main() -> None:
    compile_mailcast()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "campaign"
        campaign = write_campaign(folder, ROWS)
        bare = best([sys.executable, "-c", BARE_LOOP, str(folder)])
        check = best([*MAILCAST, "check", str(campaign)])
        # each run writes 10,000 new files into a folder of its own, as a user's first preview does
        previews = [run_process([*MAILCAST, "preview", str(campaign), "--out", f"{tmp}/eml{n}"]) for n in range(3)]
        preview = min(previews, key=lambda m: m.wall)
        files = min(_create_files(Path(tmp) / f"files{n}", ROWS) for n in range(3))
        imports = best([sys.executable, "-c", "import typer, rich"], repeat=5)
        helped = best([*MAILCAST, "--help"], repeat=5)
        for name, measured in (("check", check), ("preview", preview)):
            if measured.code != 0:
                raise SystemExit(f"mailcast {name} failed with exit {measured.code}")

    print(f"{ROWS:,} rows; best wall time of several runs, whole processes")
    print(f"  bare loop (csv + email-validator + jinja2): {bare.wall:6.2f} s")
    print(
        f"  mailcast check:         {check.wall:6.2f} s  ratio {check.wall / bare.wall:4.2f}x  (target <= 2x)   peak {check.peak_mib:5.1f} MiB"
    )
    print(
        f"  mailcast preview --out: {preview.wall:6.2f} s  ratio {preview.wall / bare.wall:4.2f}x  (target <= 4x)   peak {preview.peak_mib:5.1f} MiB"
    )
    print(
        f"    user CPU only: {preview.user:.2f} s against the bare loop's {bare.user:.2f} s, "
        f"ratio {preview.user / bare.user:4.2f}x; creating {ROWS:,} files alone takes {files:.2f} s on this disk"
    )
    print(f"  import typer, rich:     {imports.wall:6.3f} s")
    print(f"  mailcast --help:        {helped.wall:6.3f} s  ratio {helped.wall / imports.wall:4.2f}x  (target <= 1.3x)")
    print("  peak memory target: < 100 MiB")


if __name__ == "__main__":
    main()
