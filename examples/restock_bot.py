"""A restocking bot: reads trendcast's ``stage-alerts`` from Kafka and prints what it would do.

Run it beside a worker (same broker and topic settings)::

    TRENDCAST_BROKER=kafka://127.0.0.1:9092 python examples/restock_bot.py [--from-beginning] [--max N]

Each alert is one decision line: the SKU, the stage change, and an action
with its quantity. The rules are a starting point for a real bot, not a
policy: the stage says which way demand is heading, the alert's lead-time
demand (p50, p90 units) says how much, and, when the worker knows the stock
(``inventory`` on the alert), days of cover and the newsvendor order
quantity say whether to act now.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys


def decide(alert: dict) -> str:
    """The action for one ``stage-alerts`` message, as one line of text."""
    sku, stage = alert["sku"], alert["stage"]
    lead = alert["lead_time"]
    days, p50, p90 = lead["days"], lead["p50"], lead["p90"]
    inv = alert.get("inventory") or {}
    cover, reorder = inv.get("days_of_cover"), inv.get("reorder_qty")
    change = f"{alert.get('previous_stage') or 'new'} -> {stage} ({alert['confidence']:.0%})"
    if alert.get("kind") == "low_cover":
        change = f"low cover while in {stage} ({alert['confidence']:.0%})"
        action = f"REORDER NOW {reorder:.0f} units: {cover:.1f} days of cover, demand growing"
    elif stage == "decline":
        action = "STOP reordering; mark down remaining stock"
        if cover is not None:
            action += f" ({cover:.0f} days of cover)"
    elif reorder is not None and cover is not None and cover < days:
        action = f"REORDER NOW {reorder:.0f} units: {cover:.1f} days of cover < {days}-day lead time"
    elif stage == "growth":
        action = f"RAISE order-up-to level to {p90:.0f} units per {days} days (p90; median {p50:.0f})"
    elif stage == "introduction":
        action = f"INITIAL ORDER {p90:.0f} units for the first {days} days (p90)"
    else:
        action = f"STEADY replenishment: {p50:.0f} units per {days} days (p50)"
    if reorder is not None and not action.startswith(("REORDER", "STOP")) and reorder > 0:
        action += f"; top up by {reorder:.0f} units"
    return f"{sku}: {change}: {action}"


async def run(bootstrap: str, topic: str, group: str, from_beginning: bool, max_alerts: int | None) -> int:
    """Consume alerts and print one decision per alert; returns how many were handled."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group,
        auto_offset_reset="earliest" if from_beginning else "latest", enable_auto_commit=True,
    )
    await consumer.start()
    handled = 0
    try:
        async for record in consumer:
            try:
                alert = json.loads(record.value)
                line = decide(alert)
            except (ValueError, KeyError, TypeError) as exc:
                line = f"skipped a malformed alert at offset {record.offset}: {exc}"
            print(line, flush=True)
            handled += 1
            if max_alerts is not None and handled >= max_alerts:
                break
    finally:
        await consumer.stop()
    return handled


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--topic", default=os.environ.get("TRENDCAST_TOPIC_ALERTS", "stage-alerts"))
    p.add_argument("--group", default="restock-bot")
    p.add_argument("--from-beginning", action="store_true", help="read alerts already published too")
    p.add_argument("--max", type=int, default=None, help="stop after this many alerts")
    args = p.parse_args()
    broker = os.environ.get("TRENDCAST_BROKER", "")
    if not broker.startswith("kafka://"):
        sys.exit("restock_bot: set TRENDCAST_BROKER=kafka://host:port (the broker the worker uses)")
    bootstrap = broker.removeprefix("kafka://").replace(";", ",")
    try:
        asyncio.run(run(bootstrap, args.topic, args.group, args.from_beginning, args.max))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
