"""Make tests/data/uci_online_retail_sample.csv.gz from the full UCI Online Retail file.

Usage: python tests/data/make_uci_sample.py PATH/online_retail_....csv.gz

The sample keeps, from 2010-12-01 to 2011-01-24 (55 days, the shop's
Christmas closure included), every line of 100 product codes drawn with a
fixed seed among those sold at least 5 times in that period, every line of
the non-product codes and gift vouchers, and the first 25 cancellation,
stock-adjustment and zero-price lines of other codes, so each filtering
rule of the adapter meets real rows. Rows are unchanged and in file order.
"""

from __future__ import annotations

import csv
import gzip
import random
import sys
from collections import Counter
from pathlib import Path

from stream_app.data.replay import NON_PRODUCT_CODES

FIRST, LAST = "2010-12-01", "2011-01-24"
N_PRODUCTS, SEED, PER_REASON = 100, 352, 25
OUT = Path(__file__).with_name("uci_online_retail_sample.csv.gz")


def main(source: str) -> None:
    with gzip.open(source, "rt", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [r for r in reader if FIRST <= r[4][:10] <= LAST]
    inv, code, qty, price = (header.index(c) for c in ("InvoiceNo", "StockCode", "Quantity", "UnitPrice"))
    special = lambda r: r[code].upper() in NON_PRODUCT_CODES or r[code].upper().startswith("GIFT_")  # noqa: E731
    sold = Counter(r[code].upper() for r in rows
                   if not r[inv].startswith("C") and not special(r) and int(r[qty]) > 0 and float(r[price]) > 0)
    chosen = set(random.Random(SEED).sample(sorted(c for c, n in sold.items() if n >= 5), N_PRODUCTS))
    extra: Counter = Counter()
    keep = []
    for r in rows:
        reason = ("cancellation" if r[inv].startswith("C") else "adjustment" if int(r[qty]) <= 0
                  else "zero_price" if float(r[price]) <= 0 else None)
        if r[code].upper() in chosen or special(r):
            keep.append(r)
        elif reason and extra[reason] < PER_REASON:
            extra[reason] += 1
            keep.append(r)
    with gzip.open(OUT, "wt", newline="", encoding="utf-8", compresslevel=9) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(keep)
    print(f"{OUT}: {len(keep)} rows, {OUT.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
