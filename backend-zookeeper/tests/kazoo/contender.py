"""A kazoo Election contender driven over stdin/stdout by backend-zookeeper/tests/kazoo.rs.

    python3 contender.py HOSTS PATH IDENTIFIER

Prints `contenders <json list>` when asked (`contenders`), `leading` once elected, and
`released` after `release` (it returns from the leadership function), then exits on `quit`.
"""
import json
import sys
import threading

from kazoo.client import KazooClient

hosts, path, identifier = sys.argv[1:4]
client = KazooClient(hosts=hosts, timeout=10.0)
client.start(timeout=30)
election = client.Election(path, identifier)
release = threading.Event()


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def lead():
    say("leading")
    release.wait()


def run():
    election.run(lead)
    say("released")


threading.Thread(target=run, daemon=True).start()
say("started")
for line in sys.stdin:
    command = line.strip()
    if command == "contenders":
        say("contenders " + json.dumps(election.contenders()))
    elif command == "release":
        release.set()
    elif command == "quit":
        break
election.cancel()
client.stop()
