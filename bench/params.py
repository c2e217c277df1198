"""The parameters of workloads W1–W6 of issue 6, in one place.

`python3 bench/run.py --workload W5` runs one of them (default: all, in the order below).
`--scale F` multiplies every size listed in SCALED (records, bytes, seconds) by F, so that
`--scale 0.01` gives a quick check of the harness; the defaults here are the issue's sizes
(W3 and W6: 5 GB). The figures in bench/RESULTS.md are meaningful only at scale 1.
"""

RECORD_BYTES = 1024  # every workload writes 1 KiB record values

WORKLOADS = {
    "W1": {  # max produce throughput, producer batching on
        "title": "max produce throughput, 1 KiB records, 8 partitions, acks=1 and acks=all",
        "partitions": 8,
        "records": 500_000,           # per run (512 MB); `--records` overrides
        "warmup_records": 50_000,     # untimed acks=1 produce before the measured runs
        "runs": [                     # (result key, acks, topic configs)
            ["acks1", "1", []],
            ["acksall", "all", []],
            ["acksall_flush", "all", ["flush.messages=1"]],
        ],
        "producer": {"linger.ms": 5, "batch.size": 262144, "compression.type": "none",
                     "enable.idempotence": False},
        "java_runs": ["1", "all"],    # ProducerPerformance acks values (skipped with --no-java)
    },
    "W2": {  # end-to-end latency at a fixed rate well below saturation
        "title": "end-to-end latency p50/p99/p99.9 at a fixed rate",
        "partitions": 1,
        "rate": 1000,                 # records/s (≈1 MB/s, far below either broker's ceiling)
        "seconds": 30,                # 29,000 measured records: p99.9 rests on 29 of them
        "warmup_s": 1.0,              # the first second is not counted
        "java_records": 10_000,       # org.apache.kafka.tools.EndToEndLatency: sequential round trips
    },
    "W3": {  # consumer catch-up from the start of the log
        "title": "consumer catch-up reading 5 GB from the start",
        "partitions": 8,
        "bytes": 5 * 10**9,           # written first (acks=1, untimed), then read from offset 0
    },
    "W4": {  # memory and start-up (start-up and idle RSS are taken on every broker start)
        "title": "idle RSS, RSS under W1, start-up time to first acknowledged produce",
        "idle_wait_s": 2.0,           # idle RSS is read this long after the first ack
    },
    "W5": {  # many partitions
        "title": "1,000 partitions: produce throughput and metadata latency",
        "partitions": 1000,
        "records": 200_000,           # 1 KiB, acks=1, spread over all partitions by the default partitioner
        "acks": "1",
        "metadata_calls": 200,        # Metadata requests for the 1,000-partition topic, timed one by one
    },
    "W6": {  # crash recovery
        "title": "restart time after SIGKILL with 5 GB of data",
        "partitions": 8,
        "bytes": 5 * 10**9,           # written with acks=1 before the kill
    },
}

# Sizes that --scale multiplies, with the floor a scaled value is not allowed to go below.
SCALED = {
    "W1": {"records": 1000, "warmup_records": 0},
    "W2": {"seconds": 3, "java_records": 500},
    "W3": {"bytes": 10 * 2**20},
    "W5": {"records": 2000},
    "W6": {"bytes": 10 * 2**20},
}


def effective(scale=1.0, records=None, warmup_records=None):
    """The workload parameters after --scale (and the legacy --records / --warmup-records)."""
    out = {name: dict(p) for name, p in WORKLOADS.items()}
    for name, fields in SCALED.items():
        for field, floor in fields.items():
            value = out[name][field] * scale
            out[name][field] = max(floor, type(out[name][field])(value))
    if records is not None:
        out["W1"]["records"] = records
    if warmup_records is not None:
        out["W1"]["warmup_records"] = warmup_records
    return out
