#!/usr/bin/python3
"""Parses a file of Prometheus text with the Python client's parser (Debian's python3-prometheus-client) and prints
its samples as one JSON list: [{"family", "type", "name", "labels", "value"}]. Exits 1 with the parser's complaint when
the text does not parse, or when a family has no # TYPE line (the parser then calls it "unknown")."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    with open(sys.argv[1], encoding="utf-8") as file:
        text = file.read()
    samples = []
    try:
        for family in text_string_to_metric_families(text):
            if family.type == "unknown":
                raise ValueError(f"no # TYPE line for {family.name}")
            for sample in family.samples:
                samples.append({"family": family.name, "type": family.type, "name": sample.name,
                                "labels": sample.labels, "value": sample.value})
    except ValueError as error:
        print(f"not Prometheus text: {error}", file=sys.stderr)
        sys.exit(1)
    json.dump(samples, sys.stdout)


main()
