"""kafka-python (Debian python3-kafka 2.0.2) driven by the relaylog tests.

usage: python3 kafka_python_client.py BROKER COMMAND JSON_ARGS
Prints one JSON document on stdout. Exits non-zero on any failure.
"""
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

broker, command, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])


def enc(s):
    return None if s is None else s.encode()


def dec(b):
    return None if b is None else b.decode()


def record(m):
    return {"offset": m.offset, "key": dec(m.key), "value": dec(m.value), "timestamp": m.timestamp,
            "headers": {k: dec(v) for k, v in (m.headers or [])}}


def produce():
    p = KafkaProducer(bootstrap_servers=[broker], acks=args["acks"], compression_type=args.get("compression"),
                      linger_ms=5, request_timeout_ms=5000)
    futures = [p.send(args["topic"], partition=args["partition"], key=enc(r.get("key")), value=enc(r["value"]),
                      timestamp_ms=r.get("timestamp"), headers=[(k, enc(v)) for k, v in r.get("headers", {}).items()])
               for r in args["records"]]
    p.flush(10)
    out = [f.get(timeout=10).offset for f in futures]
    p.close(5)
    return out


def consumer(**kw):
    return KafkaConsumer(bootstrap_servers=[broker], consumer_timeout_ms=8000, fetch_max_wait_ms=100,
                         request_timeout_ms=11000, session_timeout_ms=10000, heartbeat_interval_ms=300, **kw)


def consume():
    c = consumer(enable_auto_commit=False)
    tp = TopicPartition(args["topic"], args["partition"])
    c.assign([tp])
    c.seek(tp, args["offset"])
    got = []
    for m in c:
        got.append(record(m))
        if len(got) >= args["count"]:
            break
    c.close()
    return got


def offset_for_time():
    c = consumer(enable_auto_commit=False)
    tp = TopicPartition(args["topic"], args["partition"])
    found = c.offsets_for_times({tp: args["timestamp"]})[tp]
    c.close()
    return None if found is None else {"offset": found.offset, "timestamp": found.timestamp}


def group():
    c = consumer(group_id=args["group"], enable_auto_commit=False, auto_offset_reset="earliest")
    c.subscribe([args["topic"]])
    got = []
    deadline = time.time() + 10
    while len(got) < args["count"] and time.time() < deadline:
        for msgs in c.poll(timeout_ms=200).values():
            got.extend(record(m) for m in msgs)
    c.commit()
    c.close()
    return got


print(json.dumps({"produce": produce, "consume": consume, "offset_for_time": offset_for_time, "group": group}[command]()))
