#!/usr/bin/env python3
"""Every public function and method of natron has a compiled example.

Reads rustdoc's JSON output (target/doc/natron.json, built with
`cargo rustdoc --lib --all-features -- -Z unstable-options --output-format json`)
and lists each public free function, inherent method and trait method
declared by natron whose docs hold no ``` code block. Trait *implementations*
(`impl Read for BodyReader`) are the trait's to document and are skipped.

rustdoc's own `--show-coverage` does not count methods, hence this script.
Exit status 1 lists what is missing; `--list` prints every item checked.
"""
import json
import os
import sys

path = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "doc", "natron.json")
args = [a for a in sys.argv[1:] if not a.startswith("--")]
if args:
    path = args[0]
doc = json.load(open(path))
index = doc["index"]


def local(item):
    return item.get("crate_id") == 0


def kind(item):
    inner = item.get("inner") or {}
    return next(iter(inner), None) if isinstance(inner, dict) else inner


# Walk the public API from the crate root, as a user reaches it: modules,
# re-exports, types' inherent impls, traits. `#[doc(hidden)]` modules
# (`__bench`, `__loom`) are absent from the JSON, so what only they export
# is not reached.
checked = {}  # id -> "Type::method"
seen = set()


def walk(iid, owner=None):
    item = index.get(str(iid))
    if item is None or not local(item) or (str(iid), owner) in seen:
        return
    seen.add((str(iid), owner))
    k = kind(item)
    inner = item["inner"][k] if isinstance(item["inner"], dict) else None
    if k == "module":
        for c in inner["items"]:
            walk(c)
    elif k == "use":
        if inner.get("id") is not None:
            walk(inner["id"])
    elif k in ("struct", "enum", "union"):
        for c in inner.get("impls", []):
            walk(c, item["name"])
    elif k == "impl":
        if inner.get("trait") is not None or inner.get("is_synthetic") or inner.get("blanket_impl"):
            return
        for c in inner["items"]:
            m = index.get(str(c))
            if m and kind(m) == "function" and m.get("visibility") == "public":
                checked[str(c)] = f"{owner}::{m['name']}"
    elif k == "trait":
        for c in inner["items"]:
            m = index.get(str(c))
            if m and kind(m) == "function":
                checked[str(c)] = f"{item['name']}::{m['name']}"
    elif k == "function" and item.get("visibility") == "public":
        checked[str(iid)] = item["name"]


walk(doc["root"])

missing = []
for mid, name in sorted(checked.items(), key=lambda kv: (index[kv[0]]["span"]["filename"], index[kv[0]]["span"]["begin"][0])):
    item = index[mid]
    docs = item.get("docs") or ""
    where = f"{item['span']['filename']}:{item['span']['begin'][0]}"
    has = "```" in docs
    if "--list" in sys.argv:
        print(("ok      " if has else "MISSING ") + f"{where} {name}")
    if not has:
        missing.append(f"{where} {name}")

print(f"{len(checked) - len(missing)} of {len(checked)} public functions and methods have an example")
if missing and "--list" not in sys.argv:
    print("missing:")
    for m in missing:
        print("  " + m)
sys.exit(1 if missing else 0)
