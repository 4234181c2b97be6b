"""Run one workload against a Python peer, in the peer's own environment; print the figures as JSON.

``python pyclient.py PEER WORKLOAD COUNT TIMEOUT LOW HIGH``: imports ``<PEER>_app`` (its
``Client``) from this folder and prints one JSON line with the figures and the durability the
peer reports.
"""
import importlib
import json
import sys

import workloads_client


def main(argv):
    peer, workload, count, timeout, low, high = argv
    client = importlib.import_module(f"{peer}_app").Client()
    figures = workloads_client.run(client, workload, int(count), float(timeout), (float(low), float(high)))
    figures["durability"] = client.durability()
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
