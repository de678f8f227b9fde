#!/usr/bin/env python3
"""The video-model catalog, made from the vendor's public docs repository (aimlapi/api-docs).

Two stages (Python 3.11, standard library only):

  generate.py extract DOCS_DIR [--commit SHA]
      Reads a checkout of the docs repository and writes catalog/vendor/: the request-body
      schema of every video model page reduced to facts (specs/<spec file name>), the shared
      GET schema, and pages.json (per page: ids, task, spec, render time, deprecation, media
      fields, example charges, documentation issues).

  generate.py build [--check]
      Reads only catalog/vendor/ and writes catalog/models.json, the catalog the client embeds.
      With --check, writes nothing and exits 1 when catalog/models.json differs from what build
      would write.

Only facts are kept: ids, types, enums, ranges, defaults, required lists, formats, media kinds,
whether base64 is accepted (a conclusion drawn from a field's description, never the text),
numbers of seconds and credits. No description, title or example text is copied.
See tools/catalog/README.md.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "catalog" / "vendor"
SPECS = VENDOR / "specs"
PAGES_JSON = VENDOR / "pages.json"
MODELS_JSON = REPO / "catalog" / "models.json"

VIDEO_DIR = "api-references/video-models"
POST_PATH = "/v2/video/generations"
FORMAT_VERSION = 1

# Schema keywords that carry facts; everything else (description, title, example(s), x-*) goes.
KEEP = {
    "type", "enum", "const", "format", "default", "nullable", "deprecated",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems",
    "items", "properties", "required", "additionalProperties", "anyOf", "oneOf", "allOf", "not",
}


def dump(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(obj), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Schema reduction
# ---------------------------------------------------------------------------------------------

def reduce_schema(node):
    """A JSON schema with only its fact keywords. Property names are kept whatever they are."""
    if isinstance(node, list):
        return [reduce_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key not in KEEP:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: reduce_schema(sub) for name, sub in value.items()}
        elif key == "required" and not isinstance(value, list):
            continue  # `required: true` on a property is not JSON schema; the list carries it
        elif key in ("default", "enum", "const"):
            out[key] = value
        else:
            out[key] = reduce_schema(value)
    return out


def descriptions(node) -> str:
    """All description text under a schema node (read to draw conclusions, never stored)."""
    found = []

    def walk(n, in_props=False):
        if isinstance(n, dict):
            for k, v in n.items():
                if in_props:
                    walk(v)
                elif k == "description" and isinstance(v, str):
                    found.append(v)
                else:
                    walk(v, k == "properties")
        elif isinstance(n, list):
            for x in n:
                walk(x)

    walk(node)
    return " ".join(found)


# ---------------------------------------------------------------------------------------------
# Media fields
# ---------------------------------------------------------------------------------------------

MEDIA_NAME = re.compile(r"(_url|_urls|^url$|^uri$|image|_images?$|_list$|mask|frame_image)", re.I)
KINDS = ("image", "video", "audio")


def kind_words(text: str) -> list[str]:
    text = text.lower()
    hits = []
    for kind in ("audio", "video", "image"):
        if kind in text:
            hits.append(kind)
    if not hits and re.search(r"mask|frame|keyframe|picture|photo", text):
        hits.append("image")
    return hits


def first_kind_in(text: str) -> str | None:
    m = re.search(r"\b(image|video|audio)s?\b", text.lower())
    return m.group(1) if m else None


def data_uri_verdict(text: str):
    """True / False / None (unknown): whether a field takes base64 `data:` URIs, from its text."""
    t = text.lower()
    if re.search(r"base64|base-64|data uri|data url|data:", t):
        return True
    if re.search(
        r"only [a-z ]*urls? (are|is) (supported|accepted)|public(ly accessible)? url|"
        r"urls? only|must be (a |an )?(public |https? )?url|not support(ed)? base64",
        t,
    ):
        return False
    return None


def branches(schema: dict) -> list[dict]:
    alts = schema.get("anyOf") or schema.get("oneOf")
    if not alts:
        return [schema]
    return [b for b in alts if isinstance(b, dict) and set(b) - {"nullable", "description"}]


def schema_type(s: dict) -> str | None:
    t = s.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    if t:
        return t
    if "properties" in s:
        return "object"
    if "items" in s:
        return "array"
    if "enum" in s and s["enum"]:
        v = s["enum"][0]
        return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(type(v))
    return None


def find_media(schema: dict) -> dict:
    """Media fields of a request schema, keyed by path (`a.b`, `list[].c`)."""
    found: dict[str, dict] = {}

    def leaf(path, name, s, is_list, required, parent_names, sibling_kinds, desc):
        kinds = []
        for k in kind_words(name):
            kinds.append(k)
            break
        if not kinds and sibling_kinds:
            kinds = sorted(sibling_kinds)
        if not kinds:
            for pn in reversed(parent_names):
                w = kind_words(pn)
                if w:
                    kinds = [w[0]]
                    break
        if not kinds:
            k = first_kind_in(desc)
            if k:
                kinds = [k]
        if not kinds:
            return
        entry = found.setdefault(path, {"kinds": set(), "list": is_list, "also_list": False,
                                        "required": required, "data_uri": None, "_desc": ""})
        entry["kinds"].update(kinds)
        entry["_desc"] += " " + desc

    def walk(s: dict, prefix: str, required_chain: bool, parent_names: list[str]):
        props = s.get("properties") or {}
        req = set(s.get("required") or []) if isinstance(s.get("required"), list) else set()
        for name, ps in props.items():
            if not isinstance(ps, dict) or name == "model":
                continue
            path = prefix + name
            is_req = required_chain and name in req
            desc = descriptions(ps)
            kinds_from_type = set()
            tprop = props.get("type")
            if isinstance(tprop, dict) and isinstance(tprop.get("enum"), list):
                kinds_from_type = {v for v in tprop["enum"] if v in KINDS}
            brs = branches(ps)
            shapes = []
            for b in brs:
                t = schema_type(b)
                if t in ("string", None) and "enum" not in b and "const" not in b and (
                    b.get("format") == "uri" or MEDIA_NAME.search(name)
                ) and b.get("format") not in ("uuid",):
                    shapes.append("single")
                    leaf(path, name, b, False, is_req, parent_names, kinds_from_type, desc)
                elif t == "array":
                    items = b.get("items") or {}
                    it = schema_type(items)
                    if it in ("string", None) and "enum" not in items and (
                        items.get("format") == "uri" or MEDIA_NAME.search(name)
                    ):
                        shapes.append("list")
                        leaf(path, name, b, True, is_req, parent_names, kinds_from_type,
                             desc)
                    elif it == "object":
                        for ib in branches(items):
                            walk(ib, path + "[].", False, parent_names + [name])
                elif t == "object":
                    walk(b, path + ".", is_req, parent_names + [name])
            if path in found and "single" in shapes and "list" in shapes:
                found[path]["list"] = False
                found[path]["also_list"] = True

    walk(schema, "", True, [])
    out = {}
    for path, e in found.items():
        kinds = sorted(e["kinds"])
        kind = kinds[0] if len(kinds) == 1 else "_or_".join(k for k in KINDS[:2] if k in kinds)
        verdict = data_uri_verdict(e["_desc"])
        out[path] = {
            "kind": kind,
            "list": e["list"],
            "also_list": e["also_list"],
            "required": e["required"],
            "data_uri": "unknown" if verdict is None else verdict,
        }
    return out


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------

NAV_LINK = re.compile(r"^(\s*)\* \[[^\]]*\]\((<)?([^)>]+)>?\)")


def parse_nav(docs: Path) -> list[dict]:
    """Video model pages in the navigation: path, family (section folder), archived flag."""
    lines = (docs / "SUMMARY.md").read_text(encoding="utf-8").splitlines()
    pages, in_video, section, heading = [], False, None, ""
    for line in lines:
        if line.startswith("## "):
            heading = line[3:].strip().lower()
            in_video = False
            continue
        m = NAV_LINK.match(line)
        if not m:
            continue
        indent, link = len(m.group(1)), m.group(3)
        if indent == 0:
            in_video = link == f"{VIDEO_DIR}/README.md"
            if heading == "archived" and link.startswith(VIDEO_DIR + "/"):
                pages.append({"path": link, "family": Path(link).parent.name.lower(),
                              "archived": True})
            continue
        if not in_video:
            continue
        if indent == 2:
            section = Path(link).parent.name.lower()
        elif link.startswith(VIDEO_DIR + "/") and not link.endswith("README.md"):
            pages.append({"path": link, "family": section, "archived": heading == "archived"})
    return pages


def table_rows(html: str) -> list[list[str]]:
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        cells = re.findall(r"<td>(.*?)</td>", row, re.S)
        if cells:
            rows.append(cells)
    return rows


def parse_model_database(docs: Path):
    """The id table of video models (id -> linked page) and every id listed as deprecated."""
    path = docs / "api-references" / "model-database.md"
    if not path.exists():
        return {}, set()
    text = path.read_text(encoding="utf-8")
    listed: dict[str, list[str]] = {}
    m = re.search(r"### Video Models(.*?)(?:\n### |\Z)", text, re.S)
    if m:
        for cells in table_rows(m.group(1)):
            link = re.search(r'href="([^"]+)"', cells[0])
            ident = re.sub(r"<[^>]+>", "", cells[0]).strip()
            if link and ident:
                page = str(Path("api-references") / link.group(1))
                listed.setdefault(page, []).append(ident)
    deprecated = set()
    m = re.search(r"Deprecated / No Longer Supported Models(.*)", text, re.S)
    if m:
        for cells in table_rows(m.group(1)):
            for ident in re.split(r"<[^>]+>|,|\s+or\s+|\s+", cells[0]):
                ident = ident.strip()
                if ident:
                    deprecated.add(ident)
    return listed, deprecated


def norm_id(s: str) -> str:
    return re.sub(r"[._]", "-", s.lower())


def norm_name(s: str) -> str:
    s = Path(s).stem.lower() if s.endswith((".json", ".md")) else s.lower()
    s = re.sub(r"[._ ]", "-", s)
    s = s.replace("standart", "standard")
    for short, long in (("t2v", "text-to-video"), ("i2v", "image-to-video"),
                        ("v2v", "video-to-video"), ("r2v", "reference-to-video")):
        s = re.sub(rf"(^|-){short}(-|$)", rf"\1{long}\2", s)
    return s


DUR = (r"(\d+(?:\.\d+)?)(?:\s*[–-]\s*(\d+(?:\.\d+)?))?\s*(minutes?|mins?|seconds?|secs?|s)\b"
       r"(?:\s*(\d+(?:\.\d+)?)\s*(seconds?|secs?|s)\b)?")
TIME_NOTE = re.compile(
    r"(?i)(processing time|generation time(?: is)?|may take|takes|completing generation in)"
    r"[\s*:\\~]*(?:about|around|approximately|roughly)?[\s\\~]*" + DUR)


def seconds(value: str, unit: str) -> float:
    return float(value) * (60 if unit.lower().startswith("min") else 1)


def render_time(text: str):
    """Seconds from the page's timing notes: a number, a [min, max] pair, or None."""
    lows, highs = [], []
    for m in TIME_NOTE.finditer(text):
        lo = seconds(m.group(2), m.group(4))
        hi = seconds(m.group(3), m.group(4)) if m.group(3) else lo
        if m.group(5):
            extra = seconds(m.group(5), m.group(6))
            lo, hi = lo + extra, hi + extra
        lows.append(lo)
        highs.append(hi)
    if not lows:
        return None
    lo, hi = round(min(lows)), round(max(highs))
    return lo if lo == hi else [lo, hi]


CHARGE = re.compile(r"""['"](credits_used|tokens_used)['"]\s*:\s*(\d+)""")
USD = re.compile(r"""['"]usd_spent['"]\s*:\s*([\d.]+)""")
ID_SUFFIX = re.compile(r"""['"]id['"]\s*:\s*['"][^'"]*?:([^'"]+)['"]""")
REQ_KEY = re.compile(
    r"""["']?(duration|resolution|aspect_ratio|generate_audio|num_frames|mode|frames_per_second)"""
    r"""["']?\s*:\s*("[^"]*"|'[^']*'|\d+(?:\.\d+)?|True|False|true|false)""")


def example_charges(text: str, own_ids: set[str], placeholder) -> tuple[list, list]:
    """Credits shown in the page's example responses, with the example request's billing
    parameters; charges that name another model are reported as issues, not kept."""
    charges, issues = [], []
    for line_no, line in enumerate(text.splitlines()):
        m = CHARGE.search(line)
        if not m:
            continue
        credits = int(m.group(2))
        if placeholder is not None and credits == placeholder:
            continue
        other = ID_SUFFIX.search(line)
        if other and other.group(1) not in own_ids:
            issues.append(f"example charge belongs to another model ({other.group(1)})")
            continue
        before = "\n".join(text.splitlines()[:line_no])
        blocks = re.findall(r"```python\n(.*?)```", before, re.S)
        request = {}
        if blocks:
            payload = blocks[-1]
            pm = re.search(r"(?:data|payload|json)\s*=\s*\{(.*?)\n\s*\}", payload, re.S)
            for k, v in REQ_KEY.findall(pm.group(1) if pm else payload):
                v = v.strip("'\"")
                if v in ("True", "true", "False", "false"):
                    request[k] = v.lower() == "true"
                elif re.fullmatch(r"\d+", v):
                    request[k] = int(v)
                elif re.fullmatch(r"\d+\.\d+", v):
                    request[k] = float(v)
                else:
                    request[k] = v
        usd = USD.search(line)
        charges.append({
            "credits": credits,
            "field": m.group(1),
            "usd": float(usd.group(1)) if usd else None,
            "request": request,
        })
    return charges, issues


STATUS = re.compile(r"""['"]status['"]\s*:\s*['"](\w+)['"]""")
INCLUDES = re.compile(r"""\[([^\]]*)\]\.includes\(\s*status\s*\)""")


def statuses_seen(text: str) -> list[str]:
    seen = set(STATUS.findall(text))
    for group in INCLUDES.findall(text):
        seen.update(re.findall(r"""['"](\w+)['"]""", group))
    return sorted(seen)


OPENAPI = re.compile(
    r'\{% openapi-operation spec="([^"]*)" path="([^"]*)" method="(\w+)" %\}\s*\n\[[^\]]*\]\(([^)]*)\)')
HINT = re.compile(r"valid for the following list of our models:(.*?)\{% endhint", re.S)
CODE_ID = re.compile(r"""["']?model["']?\s*[:=]\s*["']([^"'\s]+)["']""")


def link_target(link: str) -> str | None:
    m = re.search(r"/docs/(api-references/[^)\s]+\.json)$", link)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------------------------

def load_specs(docs: Path) -> tuple[dict, list]:
    """Every OpenAPI JSON under the video models folder: its POST request schema, if any."""
    specs, ignored = {}, []
    for f in sorted((docs / VIDEO_DIR).rglob("*.json")):
        rel = str(f.relative_to(docs))
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            ignored.append({"spec": rel, "reason": "unreadable in this checkout"})
            continue
        paths = doc.get("paths") or {}
        posts = {p: ops["post"] for p, ops in paths.items()
                 if isinstance(ops, dict) and "post" in ops}
        schema, path = None, None
        for p in [POST_PATH] + sorted(posts):
            op = posts.get(p)
            if not op:
                continue
            try:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                path = p
                break
            except (KeyError, TypeError):
                continue
        get = None
        for p, ops in paths.items():
            if isinstance(ops, dict) and "get" in ops and not posts:
                get = (p, ops["get"])
        model_enum = []
        if schema:
            model = (schema.get("properties") or {}).get("model") or {}
            model_enum = [v for v in model.get("enum") or [] if isinstance(v, str)]
        specs[rel] = {
            "schema": schema,
            "post_path": path,
            "paths": sorted(paths),
            "get": get,
            "model_enum": model_enum,
            "has_components": bool((doc.get("components") or {}).get("schemas")),
            "doc": doc,
        }
    return specs, ignored


def usable(spec: dict | None) -> bool:
    return bool(spec and spec["schema"] and spec["post_path"] == POST_PATH
                and spec["model_enum"] and not spec["has_components"])


# ---------------------------------------------------------------------------------------------
# Task and family
# ---------------------------------------------------------------------------------------------

def infer_task(spec_ids: list[str], page_stem: str, page_ids: list[str], media: dict) -> str:
    """The task, from the spec's model id and the page's file name, else the page's ids, else
    from which media the request requires."""
    rules = [
        (r"foley", "video-to-audio"),
        (r"lip-sync", "lip-sync"),
        (r"motion-control", "motion-control"),
        (r"effects", "effects"),
        (r"multi-image", "multi-image-to-video"),
        (r"first-last|transition", "first-last-image-to-video"),
        (r"extend-video", "video-extend"),
        (r"animate-", "animate"),
        (r"video-to-video|vace", "video-to-video"),
        (r"reference-to-video", "reference-to-video"),
        (r"image-to-video", "image-to-video"),
        (r"text-to-video", "text-to-video"),
    ]
    for words in (spec_ids + [page_stem], page_ids):
        words = " ".join(norm_name(x) for x in words)
        for pattern, task in rules:
            if re.search(pattern, words):
                return task
    required = {m["kind"] for p, m in media.items() if m["required"]}
    optional = {m["kind"] for p, m in media.items() if not m["required"]}
    if "image" in required and "audio" in required and "video" not in required:
        return "avatar"
    if any("video" in k for k in required):
        return "video-to-video"
    if "image" in required:
        return "image-to-video"
    if not optional:
        return "text-to-video"
    if optional <= {"image"}:
        return "text-or-image-to-video"
    return "any-to-video"


# ---------------------------------------------------------------------------------------------
# extract
# ---------------------------------------------------------------------------------------------

def git_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def extract(docs_dir: Path, commit: str | None) -> None:
    docs = docs_dir / "docs" if (docs_dir / "docs" / "SUMMARY.md").exists() else docs_dir
    if not (docs / "SUMMARY.md").exists():
        sys.exit(f"no SUMMARY.md under {docs_dir}: not a checkout of aimlapi/api-docs")
    commit = commit or git_commit(docs_dir)
    nav = parse_nav(docs)
    listed, deprecated_ids = parse_model_database(docs)
    deprecated_norm = {norm_id(x) for x in deprecated_ids}
    specs, ignored = load_specs(docs)

    get_name = "universal-video-fetch.json"
    get_spec = specs.get(f"{VIDEO_DIR}/{get_name}")
    placeholder = None
    if get_spec and get_spec["get"]:
        resp = get_spec["get"][1].get("responses", {}).get("200", {})
        schema = resp.get("content", {}).get("application/json", {}).get("schema", {})
        usage = (((schema.get("properties") or {}).get("meta") or {}).get("properties")
                 or {}).get("usage") or {}
        placeholder = ((usage.get("properties") or {}).get("credits_used") or {}).get("example")

    # First pass: read every page, resolve the links that work.
    raw_pages = []
    linked = set()
    for entry in nav:
        path = docs / entry["path"]
        if not path.exists():
            raw_pages.append({**entry, "missing": True})
            continue
        text = path.read_text(encoding="utf-8")
        hint = HINT.search(text)
        hint_ids = re.findall(r"`([^`]+)`", hint.group(1)) if hint else []
        ops = OPENAPI.findall(text)
        post = next(((s, p, l) for s, p, m, l in ops if m == "post"), None)
        gets = [(s, p, l) for s, p, m, l in ops if m == "get"]
        target = link_target(post[2]) if post else None
        spec_rel, issues = None, []
        if post and target and target in specs and usable(specs[target]):
            spec_rel = target
            linked.add(target)
        elif post:
            issues.append("POST schema embed broken" if not target
                          else "POST schema link names a missing file")
        if post and post[1] != POST_PATH:
            issues.append("POST embed names a legacy path; its spec defines the universal one")
        raw_pages.append({**entry, "text": text, "hint_ids": hint_ids, "post": post,
                          "gets": gets, "spec_rel": spec_rel, "issues": issues,
                          "code_ids": sorted(set(CODE_ID.findall(text)))})

    # Second pass: repair broken links by matching an unlinked spec.
    for page in raw_pages:
        if page.get("missing") or page["spec_rel"] or not page["post"]:
            continue
        stem = Path(page["path"]).stem
        link = link_target(page["post"][2]) or ""
        best, best_score = None, 0.0
        for rel, spec in specs.items():
            if rel in linked or not usable(spec):
                continue
            score = 0.0
            if set(spec["model_enum"]) & set(page["hint_ids"]):
                score = 3
            names = {norm_name(stem), norm_name(page["post"][0])}
            if link:
                names.add(norm_name(Path(link).name))
            spec_name = norm_name(Path(rel).name)
            if spec_name in names:
                score = max(score, 2)
            elif max(difflib.SequenceMatcher(None, spec_name, n).ratio() for n in names) >= 0.9:
                score = max(score, 1)
            if score and Path(rel).parent.name.lower() in (Path(page["path"]).parent.name.lower(),
                                                          Path(link).parent.name.lower()):
                score += 0.5
            if score > best_score:
                best, best_score = rel, score
            elif score == best_score and score:
                best = None  # ambiguous: leave it unresolved
        if best:
            page["spec_rel"] = best
            linked.add(best)
            broken = next(i for i in page["issues"] if i.startswith("POST schema"))
            page["issues"].remove(broken)
            page["issues"].append(f"{broken}: spec matched by " +
                                  ("model id" if best_score >= 3 else "file name"))

    # Pages without a spec of their own (a copy of another page) are dropped with a reason.
    claimed = set()
    for page in raw_pages:
        if page.get("spec_rel"):
            claimed.update(specs[page["spec_rel"]]["model_enum"])
            claimed.update(page["hint_ids"])

    out_pages, skipped, used_specs = [], [], {}
    for page in raw_pages:
        if page.get("missing"):
            skipped.append({"page": page["path"], "reason": "page file missing"})
            continue
        if not page["spec_rel"]:
            reason = "no POST schema"
            if set(page["hint_ids"]) & claimed:
                reason += "; its model ids belong to another page (copied page)"
            skipped.append({"page": page["path"], "reason": reason})
            continue
        spec = specs[page["spec_rel"]]
        used_specs[page["spec_rel"]] = spec
        own = set(spec["model_enum"]) | set(page["hint_ids"])
        charges, charge_issues = example_charges(page["text"], own, placeholder)
        get_ref = None
        for name, gpath, glink in page["gets"]:
            gt = link_target(glink)
            if gt and (docs / gt).exists():
                get_ref = Path(gt).name
            else:
                page["issues"].append("GET schema link broken or deleted; shared GET spec applies")
        if not page["gets"]:
            page["issues"].append("no GET schema embed; shared GET spec applies")
        media = find_media(spec["schema"])
        ids_all = spec["model_enum"] + page["hint_ids"]
        out_pages.append({
            "page": page["path"],
            "family": page["family"],
            "archived": page["archived"],
            "ids": {
                "spec": spec["model_enum"],
                "page": page["hint_ids"],
                "code": page["code_ids"],
                "table": sorted(listed.get(page["path"], [])),
            },
            "task": infer_task(spec["model_enum"], Path(page["path"]).stem, page["hint_ids"],
                               media),
            "spec": None,  # filled below, once file names are settled
            "spec_source": page["spec_rel"],
            "get_spec": get_ref or get_name,
            "render_seconds": render_time(page["text"]),
            "deprecated": page["archived"] or any(norm_id(i) in deprecated_norm for i in ids_all),
            "media": media,
            "example_charges": charges,
            "statuses_seen": statuses_seen(page["text"]),
            "issues": sorted(set(page["issues"] + charge_issues)),
        })

    # Specs nobody links: older duplicates, full API dumps, or models documented by a spec only.
    page_ids = set()
    for p in out_pages:
        page_ids.update(p["ids"]["spec"] + p["ids"]["page"])
    by_enum: dict[str, list[str]] = {}
    for rel, spec in sorted(specs.items()):
        if rel in used_specs or rel.endswith(get_name):
            continue
        if not usable(spec):
            reason = ("full API dump" if spec["has_components"] else
                      "no POST on the universal path" if spec["schema"] is None or
                      spec["post_path"] != POST_PATH else "no model enum")
            ignored.append({"spec": rel, "reason": reason})
            continue
        if set(spec["model_enum"]) & page_ids:
            ignored.append({"spec": rel, "reason": "unlinked copy of a linked spec's model"})
            continue
        by_enum.setdefault(spec["model_enum"][0], []).append(rel)
    for model_id, rels in sorted(by_enum.items()):
        tail = norm_name(model_id.split("/")[-1])
        keep = [r for r in rels if tail in norm_name(Path(r).name)] or rels[:1]
        keep = keep[0]
        for r in rels:
            if r != keep:
                ignored.append({"spec": r, "reason": f"enumerates {model_id}, as {Path(keep).name} does"})
        spec = specs[keep]
        used_specs[keep] = spec
        media = find_media(spec["schema"])
        out_pages.append({
            "page": None,
            "family": Path(keep).parent.name.lower(),
            "archived": False,
            "ids": {"spec": spec["model_enum"], "page": [], "code": [], "table": []},
            "task": infer_task(spec["model_enum"], Path(keep).stem, [], media),
            "spec": None,
            "spec_source": keep,
            "get_spec": get_name,
            "render_seconds": None,
            "deprecated": any(norm_id(i) in deprecated_norm for i in spec["model_enum"]),
            "media": media,
            "example_charges": [],
            "statuses_seen": [],
            "issues": ["no page: documented by its spec file only"],
        })

    # File names for the reduced specs: the spec's own name, its folder prefixed on a clash.
    names: dict[str, str] = {}
    basenames: dict[str, list[str]] = {}
    for rel in used_specs:
        basenames.setdefault(Path(rel).name, []).append(rel)
    for base, rels in basenames.items():
        for rel in rels:
            names[rel] = base if len(rels) == 1 else f"{Path(rel).parent.name}__{base}"
    for p in out_pages:
        p["spec"] = names[p["spec_source"]]

    if SPECS.exists():
        for old in SPECS.glob("*.json"):
            old.unlink()
    for rel, spec in used_specs.items():
        write(SPECS / names[rel], {
            "method": "post",
            "path": POST_PATH,
            "source": rel,
            "schema": reduce_schema(spec["schema"]),
        })
    if get_spec and get_spec["get"]:
        gpath, gop = get_spec["get"]
        resp = gop.get("responses", {}).get("200", {})
        write(SPECS / get_name, {
            "method": "get",
            "path": gpath,
            "source": f"{VIDEO_DIR}/{get_name}",
            "parameters": [
                {"in": prm.get("in"), "name": prm.get("name"),
                 "required": bool(prm.get("required")), "schema": reduce_schema(prm.get("schema", {}))}
                for prm in gop.get("parameters", [])
            ],
            "response": reduce_schema(resp.get("content", {}).get("application/json", {})
                                      .get("schema", {})),
        })

    out_pages.sort(key=lambda p: (p["page"] is None, p["page"] or "", p["spec"]))
    write(PAGES_JSON, {
        "format": FORMAT_VERSION,
        "source": {"repository": "aimlapi/api-docs", "commit": commit},
        "pages": out_pages,
        "skipped_pages": sorted(skipped, key=lambda x: x["page"]),
        "ignored_specs": sorted(ignored, key=lambda x: x["spec"]),
        "credits_placeholder": placeholder,
    })
    print(f"extract: {len(out_pages)} entries ({sum(p['page'] is None for p in out_pages)} "
          f"without a page), {len(used_specs)} specs, {len(skipped)} pages skipped, "
          f"{len(ignored)} specs ignored -> {VENDOR.relative_to(REPO)}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------

def to_type(value, typ: str):
    """Integer/number/boolean facts written as strings ("5") become numbers/booleans."""
    if typ == "integer" and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if typ == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if typ == "number" and isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        v = float(value)
        return int(v) if v.is_integer() else v
    if typ == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def merge_branches(a: dict, b: dict) -> dict:
    """Two anyOf/oneOf branches of one type as one schema: enums and properties united
    (recursively), required only where both require."""
    out = dict(a)
    for k, v in b.items():
        if k == "enum" and "enum" in out:
            out["enum"] = out["enum"] + [x for x in v if x not in out["enum"]]
        elif k == "properties" and "properties" in out:
            props = dict(out["properties"])
            for name, sub in v.items():
                props[name] = merge_branches(props[name], sub) if name in props else sub
            out["properties"] = props
        elif k == "required" and isinstance(v, list):
            out["required"] = [x for x in out.get("required", []) if x in v]
        else:
            out.setdefault(k, v)
    if "required" in a and "required" not in b:
        out["required"] = []
    return out


def param(name: str, schema: dict, required: bool, notes: list[str], where: str,
          norm: list[str] | None = None) -> dict:
    """One parameter in our format. `notes` gets documentation problems, `norm` the values
    written as strings that were read as numbers or booleans."""
    norm = notes if norm is None else norm
    brs = branches(schema)
    types = []
    for b in brs:
        t = schema_type(b)
        if t and t not in types:
            types.append(t)
    typ = types[0] if types else "string"
    merged: dict = {}
    for b in brs:
        if schema_type(b) in (typ, None):
            merged = merge_branches(merged, b) if merged else dict(b)
    for k in ("default", "nullable", "deprecated"):
        if k in schema and k not in merged:
            merged[k] = schema[k]
    alts = schema.get("anyOf") or schema.get("oneOf") or []
    if any(isinstance(b, dict) and b.get("nullable") is True and not set(b) - {"nullable"}
           for b in alts):
        merged["nullable"] = True
    p: dict = {"name": name, "type": typ, "required": required}
    if len(types) > 1:
        p["alt_types"] = types[1:]
    if "enum" in merged:
        enum = [to_type(v, typ) for v in merged["enum"]]
        if enum != merged["enum"]:
            norm.append(f"{where}{name}: enum values written as strings, read as {typ}")
        p["enum"] = enum
    if "const" in merged:
        p["enum"] = [to_type(merged["const"], typ)]
    if "default" in merged:
        default = to_type(merged["default"], typ)
        if default != merged["default"]:
            norm.append(f"{where}{name}: default {merged['default']!r} written as a string, "
                        f"read as {typ}")
        p["default"] = default
        if "enum" in p and default not in p["enum"]:
            notes.append(f"{where}{name}: default {default!r} is not in its enum")
    for src, dst in (("minimum", "min"), ("maximum", "max"), ("exclusiveMinimum", "exclusive_min"),
                     ("exclusiveMaximum", "exclusive_max"), ("minLength", "min_length"),
                     ("maxLength", "max_length"), ("minItems", "min_items"),
                     ("maxItems", "max_items"), ("format", "format"), ("pattern", "pattern")):
        if src in merged:
            p[dst] = merged[src]
    if merged.get("nullable") is True:
        p["nullable"] = True
    if merged.get("deprecated") is True:
        p["deprecated"] = True
    if typ == "array":
        items = merged.get("items") or {}
        it = schema_type(items) or "string"
        p["items_type"] = it
        if "enum" in items:
            p["items_enum"] = [to_type(v, it) for v in items["enum"]]
        if items.get("format"):
            p["items_format"] = items["format"]
        if it == "object":
            sub = param("", items, False, notes, f"{where}{name}[].", norm)
            p["fields"] = sub.get("fields", [])
    if typ == "object":
        req = merged.get("required") if isinstance(merged.get("required"), list) else []
        p["fields"] = [param(n, s, n in req, notes, f"{where}{name}.", norm)
                       for n, s in (merged.get("properties") or {}).items() if isinstance(s, dict)]
    return p


INPUT_ORDER = ["image_url", "first_frame_image", "image_urls", "image_list",
               "reference_image_urls", "reference_images", "video_url", "video_urls"]


def main_input(task: str, ids: list[str], media: dict) -> dict | None:
    """The field a manifest's `input:` goes to, or None (text-to-video, wrapped media)."""
    top = {p: m for p, m in media.items() if "." not in p and "[" not in p}
    if task == "text-to-video" or not top:
        return None
    kinds = {
        "video-to-video": ["video"], "video-extend": ["video"], "lip-sync": ["video"],
        "video-to-audio": ["video"], "any-to-video": ["image", "video"],
        "reference-to-video": ["image", "video"],
    }.get(task, ["image", "video"])
    if task == "animate":
        kinds = ["video"] if any("replace" in i for i in ids) else ["image"]

    def rank(item):
        path, m = item
        kind_rank = next((i for i, k in enumerate(kinds) if k in m["kind"]), len(kinds))
        name_rank = INPUT_ORDER.index(path) if path in INPUT_ORDER else len(INPUT_ORDER)
        list_rank = 0 if task != "reference-to-video" or m["list"] else 1
        return (not m["required"], kind_rank, list_rank, name_rank, path)

    candidates = [(p, m) for p, m in top.items() if any(k in m["kind"] for k in kinds)]
    if not candidates:
        return None
    path, m = sorted(candidates, key=rank)[0]
    return {"field": path, "kind": m["kind"], "list": m["list"], "required": m["required"]}


def similar(a: str, b: str) -> bool:
    a, b = norm_id(a), norm_id(b)
    if a.endswith("/" + b.split("/")[-1]) or b.endswith("/" + a.split("/")[-1]):
        return True
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.85


def build_models() -> dict:
    if not PAGES_JSON.exists():
        sys.exit(f"{PAGES_JSON.relative_to(REPO)} missing: run `generate.py extract DOCS_DIR` first")
    vendor = json.loads(PAGES_JSON.read_text(encoding="utf-8"))
    pages = vendor["pages"]

    # Which ids each entry claims for itself: its spec enum, and its page's own list.
    enum_owner: dict[str, list[int]] = {}
    hint_owner: dict[str, list[int]] = {}
    for i, p in enumerate(pages):
        for x in p["ids"]["spec"]:
            enum_owner.setdefault(x, []).append(i)
        for x in p["ids"]["page"]:
            hint_owner.setdefault(x, []).append(i)

    canon: list[str] = []
    repairs: list[list[str]] = [[] for _ in pages]
    for i, p in enumerate(pages):
        spec_id = p["ids"]["spec"][0]
        contested = len(enum_owner[spec_id]) > 1 and spec_id not in p["ids"]["page"] and p["ids"]["page"]
        if contested:
            own = [x for x in p["ids"]["page"] if x not in enum_owner]
            canon.append(own[0] if own else spec_id)
            if own:
                repairs[i].append(f"spec enumerates {spec_id} (another model's id); "
                                  f"the page's id {own[0]} is used")
        else:
            canon.append(spec_id)
    canon_set = set(canon)

    models = []
    total_norm = 0
    for i, p in enumerate(pages):
        cid = canon[i]
        notes = list(repairs[i])
        aliases = set()
        for x in p["ids"]["spec"] + p["ids"]["page"]:
            if x == cid:
                continue
            if x in canon_set:
                if x in p["ids"]["page"]:
                    notes.append(f"page lists {x}, another model's id: not an alias")
            else:
                aliases.add(x)
        for x in p["ids"]["code"] + p["ids"]["table"]:
            if x == cid or x in aliases:
                continue
            if x in canon_set:
                if x in p["ids"]["code"]:
                    notes.append(f"code example uses {x}, another model's id")
                continue
            if similar(x, cid):
                aliases.add(x)
        spec_file = json.loads((SPECS / p["spec"]).read_text(encoding="utf-8"))
        schema = spec_file["schema"]
        req = schema.get("required") or []
        norm: list[str] = []
        params = [param(n, s, n in req, notes, "", norm)
                  for n, s in (schema.get("properties") or {}).items()
                  if n != "model" and isinstance(s, dict)]
        for r in req:
            if r != "model" and r not in (schema.get("properties") or {}):
                notes.append(f"required field {r} has no schema")
        media = []
        for path, m in sorted(p["media"].items()):
            entry = {"field": path, "kind": m["kind"], "list": m["list"],
                     "required": m["required"],
                     "data_uri": None if m["data_uri"] == "unknown" else m["data_uri"]}
            if m.get("also_list"):
                entry["also_list"] = True
            media.append(entry)
        ids = [cid] + sorted(aliases)
        task = p["task"]
        inp = main_input(task, ids, p["media"])
        if inp and not inp["required"] and task in ("image-to-video", "video-to-video") and \
                not any(m["required"] and "." not in m["field"] for m in media):
            # An x-to-video model whose spec requires no input at all: the input is required.
            inp["required"] = True
            for prm in params:
                if prm["name"] == inp["field"]:
                    prm["required"] = True
            for m in media:
                if m["field"] == inp["field"]:
                    m["required"] = True
            notes.append(f"spec requires no {inp['field']} for a {task} model: made required")
        if task not in ("text-to-video",) and inp is None and media:
            notes.append("main input is wrapped in an object: no plain `input:` field")
        rs = p["render_seconds"]
        render = None if rs is None else (
            {"min": rs, "max": rs} if isinstance(rs, (int, float)) else {"min": rs[0], "max": rs[1]})
        total_norm += len(norm)
        notes += [i for i in p["issues"] if i.startswith("POST schema")]
        models.append({
            "id": cid,
            "aliases": sorted(aliases),
            "family": p["family"],
            "task": task,
            "input": inp,
            "params": params,
            "media": media,
            "render_seconds": render,
            "deprecated": p["deprecated"],
            "documented": p["page"] is not None,
            "spec": p["spec"],
            "repairs": sorted(set(notes)),
        })
    models.sort(key=lambda m: m["id"])
    ids_seen = {}
    for m in models:
        for x in [m["id"]] + m["aliases"]:
            if x in ids_seen:
                sys.exit(f"id {x} resolves to both {ids_seen[x]} and {m['id']}")
            ids_seen[x] = m["id"]

    get = json.loads((SPECS / "universal-video-fetch.json").read_text(encoding="utf-8"))
    status_enum = (((get.get("response") or {}).get("properties") or {}).get("status") or {}).get("enum", [])
    seen = sorted({s for p in pages for s in p["statuses_seen"]} - set(status_enum))

    def count(ps, top=True):
        c = {"params": 0, "nested_fields": 0, "with_enum": 0, "with_range": 0}
        for prm in ps:
            c["params" if top else "nested_fields"] += 1
            c["with_enum"] += "enum" in prm
            c["with_range"] += any(k in prm for k in ("min", "max", "min_length", "max_length",
                                                      "min_items", "max_items"))
            for k, v in count(prm.get("fields", []), False).items():
                c[k] += v
        return c

    totals = {"params": 0, "nested_fields": 0, "with_enum": 0, "with_range": 0}
    for m in models:
        for k, v in count(m["params"]).items():
            totals[k] += v
    return {
        "format": FORMAT_VERSION,
        "source": vendor["source"],
        "poll": {
            "statuses": status_enum,
            "statuses_in_examples": seen,
            "usage_fields": ["meta.usage.credits_used", "meta.usage.tokens_used"],
        },
        "counts": {
            "models": len(models),
            "ids": len(ids_seen),
            "params": totals["params"],
            "nested_fields": totals["nested_fields"],
            "params_and_fields_with_enum": totals["with_enum"],
            "params_and_fields_with_range": totals["with_range"],
            "media_fields": sum(len(m["media"]) for m in models),
            "models_with_repairs": sum(bool(m["repairs"]) for m in models),
            "values_read_as_numbers": total_norm,
        },
        "models": models,
    }


def build(check: bool) -> int:
    text = dump(build_models())
    if not check:
        MODELS_JSON.parent.mkdir(parents=True, exist_ok=True)
        MODELS_JSON.write_text(text, encoding="utf-8")
        print(f"build: wrote {MODELS_JSON.relative_to(REPO)}", file=sys.stderr)
        return 0
    current = MODELS_JSON.read_text(encoding="utf-8") if MODELS_JSON.exists() else ""
    if current == text:
        return 0
    print(f"{MODELS_JSON.relative_to(REPO)} is out of date; run "
          f"`python3 tools/catalog/generate.py build`", file=sys.stderr)
    try:
        old = {m["id"]: m for m in json.loads(current)["models"]} if current else {}
    except (json.JSONDecodeError, KeyError, TypeError):
        old = {}
    new = {m["id"]: m for m in json.loads(text)["models"]}
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    changed = sorted(k for k in set(new) & set(old) if new[k] != old[k])
    for label, ids in (("added", added), ("removed", removed), ("changed", changed)):
        if ids:
            more = f" (+{len(ids) - 10} more)" if len(ids) > 10 else ""
            print(f"  {label}: {', '.join(ids[:10])}{more}", file=sys.stderr)
    diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), "committed",
                                     "generated", lineterm="", n=1))
    for line in diff[:30]:
        print("  " + line, file=sys.stderr)
    if len(diff) > 30:
        print(f"  ... {len(diff) - 30} more diff lines", file=sys.stderr)
    return 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extract", help="read a docs checkout, write catalog/vendor/")
    ex.add_argument("docs_dir", type=Path)
    ex.add_argument("--commit", help="the docs commit, when DOCS_DIR is not a git checkout")
    bd = sub.add_parser("build", help="read catalog/vendor/, write catalog/models.json")
    bd.add_argument("--check", action="store_true",
                    help="exit 1 if catalog/models.json differs from what build would write")
    args = ap.parse_args(argv)
    if args.cmd == "extract":
        extract(args.docs_dir, args.commit)
        return 0
    return build(args.check)


if __name__ == "__main__":
    sys.exit(main())
