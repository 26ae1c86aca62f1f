#!/usr/bin/python3
"""Check JSON documents against a JSON Schema (draft 2020-12), with
Debian's python3-jsonschema:
    json_schema_check.py SCHEMA FILE [--lines]
--lines: FILE holds one document a line (tail, journal dump, stat --watch).
Prints each violation with where it is; exit 1 if any, 2 if it cannot run.
"""
import json
import sys

try:
    import jsonschema
except ImportError:
    print("python3-jsonschema is not installed (apt-get install "
          "python3-jsonschema, in tools/install-deps.sh)")
    sys.exit(2)


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    with open(sys.argv[1]) as f:
        schema = json.load(f)
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema)
    validator = cls(schema)
    with open(sys.argv[2]) as f:
        text = f.read()
    if "--lines" in sys.argv[3:]:
        docs = [json.loads(l) for l in text.splitlines() if l.strip()]
    else:
        docs = [json.loads(text)]
    if not docs:
        print("no document to check")
        return 1
    bad = 0
    for i, doc in enumerate(docs):
        for e in validator.iter_errors(doc):
            where = "/".join(str(p) for p in e.absolute_path) or "(top)"
            print(f"{sys.argv[1]}: document {i + 1} at {where}: {e.message}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
