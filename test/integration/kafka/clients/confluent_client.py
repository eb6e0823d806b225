"""confluent-kafka-python (Debian python3-confluent-kafka, librdkafka 2.0) driven by the relaylog tests.

usage: python3 confluent_client.py BROKER COMMAND JSON_ARGS
Prints one JSON document on stdout. Exits non-zero on any failure.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

broker, command, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])


def dec(b):
    return None if b is None else b.decode()


def record(m):
    if m.error():
        raise RuntimeError(str(m.error()))
    return {"offset": m.offset(), "key": dec(m.key()), "value": dec(m.value()), "timestamp": m.timestamp()[1],
            "headers": {k: dec(v) for k, v in (m.headers() or [])}}


def produce():
    p = Producer({"bootstrap.servers": broker, "acks": str(args["acks"]), "compression.type": args.get("compression") or "none",
                  "linger.ms": 5})
    offsets = [None] * len(args["records"])

    def report(i):
        def cb(err, msg):
            if err is not None:
                raise RuntimeError(str(err))
            offsets[i] = msg.offset()
        return cb

    for i, r in enumerate(args["records"]):
        p.produce(args["topic"], partition=args["partition"], key=r.get("key"), value=r["value"],
                  timestamp=r.get("timestamp") or 0, headers=list(r.get("headers", {}).items()), on_delivery=report(i))
    if p.flush(10) != 0:
        raise RuntimeError("messages left undelivered")
    return offsets


def consumer(**kw):
    conf = {"bootstrap.servers": broker, "enable.auto.commit": False, "fetch.wait.max.ms": 100,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 300, "group.id": "unused", **kw}
    return Consumer(conf)


def poll(c, count):
    got = []
    deadline = time.time() + 10
    while len(got) < count and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None:
            got.append(record(m))
    return got


def consume():
    c = consumer()
    c.assign([TopicPartition(args["topic"], args["partition"], args["offset"])])
    got = poll(c, args["count"])
    c.close()
    return got


def offset_for_time():
    c = consumer()
    [tp] = c.offsets_for_times([TopicPartition(args["topic"], args["partition"], args["timestamp"])], timeout=10)
    c.close()
    return {"offset": tp.offset}


def group():
    c = consumer(**{"group.id": args["group"], "auto.offset.reset": "earliest"})
    c.subscribe([args["topic"]])
    got = poll(c, args["count"])
    c.commit(asynchronous=False)
    c.close()
    return got


print(json.dumps({"produce": produce, "consume": consume, "offset_for_time": offset_for_time, "group": group}[command]()))
