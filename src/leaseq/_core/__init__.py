"""The pure core of leaseq: model, rules, clock. No I/O, no threads, no asyncio."""
