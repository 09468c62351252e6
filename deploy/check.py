#!/usr/bin/env python3
"""Checks every deployment artifact with real validators, then prints what the
Rust test (tests/deploy.rs) checks against the binary and the services.

Run through `deploy/check` (it installs the validators). Checks:

- docker-compose.yml: the Compose Specification's JSON schema
  (check-jsonschema's vendored compose-spec), then what `docker compose
  config` would refuse and more: dependencies, health conditions, profiles,
  volumes, bind mounts, secrets, published ports on 127.0.0.1 only, pinned
  images, every long-running conveyor service scraped by Prometheus.
- Dockerfile: the files it copies exist; it has a HEALTHCHECK.
- deploy/k8s: each overlay rendered the way kustomize does it (resources,
  namespace, labels, generators with hash suffixes and references, images,
  strategic-merge patches), every object validated strictly against the
  Kubernetes OpenAPI schemas (kubernetes-validate), then the wiring: probes on
  /healthz and /readyz, resources, a disruption budget and a Service per
  workload, autoscaler targets, StatefulSet service names, ConfigMaps and
  Secrets that exist, every *_FILE variable pointing into a mounted Secret.
- deploy/prometheus: `promtool check config`, `check rules`, `test rules`.
- deploy/grafana: dashboards equal to dashboards.py's output, data sources
  provisioned, every PromQL expression parsed by promtool.

`--json` prints, for tests/deploy.rs: each conveyor command with its
environment and the files it reads (compose: repository paths; Kubernetes:
the ConfigMap and Secret contents as {"text": ...}), the metric
names used by alerts and dashboards, and the dashboards' ClickHouse queries.
"""
import argparse
import copy
import hashlib
import importlib.util
import json
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.33.0"
PROBLEMS = []


def problem(msg):
    PROBLEMS.append(msg)


def run(cmd, what, cwd=None):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        problem(f"{what}: {' '.join(map(str, cmd))} failed:\n{r.stdout}{r.stderr}")
    return r


# ---------------------------------------------------------------- compose

INTERP = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value, env):
    """Compose variable interpolation with an empty environment (defaults)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        got = env.get(name)
        if op in (":-", "-"):
            return got if got else arg
        if op in (":?", "?") and not got:
            problem(f"compose: required variable {name} unset: {arg}")
            return ""
        return got or ""

    return INTERP.sub(sub, value)


def dockerfile():
    """(ENV of the final stage, {container path: repo path} of its COPYs)."""
    text = (ROOT / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM "):]
    env, copies = {}, {}
    joined = re.sub(r"\\\n\s*", " ", final)
    for line in joined.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "ENV":
            for kv in parts[1:]:
                k, _, v = kv.partition("=")
                env[k] = v
        if parts[0] == "COPY" and not any(p.startswith("--from") for p in parts):
            src, dst = parts[1], parts[2]
            if not (ROOT / src).exists():
                problem(f"Dockerfile: COPY {src}: no such file in the repository")
            copies[dst] = src
    if "HEALTHCHECK" not in final:
        problem("Dockerfile: the runtime image has no HEALTHCHECK")
    for line in text.splitlines():
        if line.startswith("FROM ") and ":" not in line.split()[1]:
            problem(f"Dockerfile: unpinned base image: {line}")
    return env, copies


def compose(tools, out):
    path = ROOT / "docker-compose.yml"
    run([tools / "venv/bin/check-jsonschema", "--builtin-schema", "vendor.compose-spec", path],
        "compose schema")
    raw = yaml.safe_load(path.read_text())
    doc = interpolate({k: v for k, v in raw.items() if not k.startswith("x-")}, {})
    services = doc["services"]
    volumes = set((doc.get("volumes") or {}).keys())
    secrets = doc.get("secrets") or {}
    image_env, copies = dockerfile()
    conveyor_image = "conveyor:local"
    for name, secret in secrets.items():
        f = secret.get("file")
        if f and not (ROOT / f).is_file():
            problem(f"compose: secret {name}: file {f} missing")

    def deps(svc):
        d = svc.get("depends_on") or {}
        return {k: {"condition": "service_started"} for k in d} if isinstance(d, list) else d

    for name, svc in services.items():
        where = f"compose: service {name}"
        image = svc.get("image", "")
        if image != conveyor_image and (":" not in image or image.endswith(":latest")):
            problem(f"{where}: image {image!r} is not pinned to a version")
        if "build" in svc and not (ROOT / str(svc["build"]) / "Dockerfile").is_file():
            problem(f"{where}: build context has no Dockerfile")
        for dep, cond in deps(svc).items():
            if dep not in services:
                problem(f"{where}: depends on unknown service {dep}")
                continue
            target = services[dep]
            c = cond.get("condition", "service_started")
            if c == "service_healthy":
                hc = target.get("healthcheck") or {}
                own = target.get("image") == conveyor_image
                if hc.get("disable") or (not hc and not own):
                    problem(f"{where}: waits for {dep} to be healthy, but {dep} has no health check")
            elif c == "service_completed_successfully":
                if str(target.get("restart", "no")) != "no":
                    problem(f"{where}: waits for {dep} to complete, but {dep} restarts")
            elif c != "service_started":
                problem(f"{where}: unknown condition {c}")
            if not svc.get("profiles") and target.get("profiles"):
                problem(f"{where}: default service depends on {dep} of profiles {target['profiles']}")
        for port in svc.get("ports") or []:
            if not str(port).startswith("127.0.0.1:"):
                problem(f"{where}: port {port} is not bound to 127.0.0.1")
        for v in svc.get("volumes") or []:
            src = str(v).split(":")[0]
            if src.startswith("."):
                if not (ROOT / src).exists():
                    problem(f"{where}: bind mount {src} does not exist")
            elif src not in volumes:
                problem(f"{where}: volume {src} is not declared")
        for s in svc.get("secrets") or []:
            if s not in secrets:
                problem(f"{where}: secret {s} is not declared")
        if image != conveyor_image:
            continue
        env = dict(image_env)
        env.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
        files = {dst: str(ROOT / src) for dst, src in copies.items()}
        for s in svc.get("secrets") or []:
            if s in secrets and secrets[s].get("file"):
                files[f"/run/secrets/{s}"] = str(ROOT / secrets[s]["file"])
        entry = svc.get("entrypoint")
        command = svc.get("command") or []
        if entry and entry[0] == "/bin/sh":
            commands = script_commands("\n".join(command), env)
        else:
            commands = [command]
        for c in commands:
            out.append({"where": f"compose {name}", "args": c, "env": env, "files": files,
                        "long_running": name != "init" and svc.get("restart") != "no"})
    # Every long-running pipeline service is scraped, and only those.
    prom = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    scraped = {t.split(":")[0] for job in prom["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]}
    for t in scraped:
        if t not in services:
            problem(f"prometheus.yml: scrapes {t}, which is not a compose service")
    for name, svc in services.items():
        cmd = svc.get("command") or []
        if svc.get("image") == conveyor_image and cmd and cmd[0] in ("run", "connect", "sink") \
                and name not in scraped:
            problem(f"prometheus.yml: compose service {name} is not scraped")


def script_commands(script, env):
    """The `conveyor ...` invocations of a shell script (also inside
    `if ...; then ...; fi`), with "$VAR" expanded from env."""
    out = []
    for line in script.splitlines():
        for part in re.split(r";|\bthen\b|\bfi\b", line):
            words = part.split()
            if words[:1] == ["conveyor"]:
                out.append([re.sub(r'^"?\$\$?\{?(\w+)\}?"?$', lambda m: env.get(m.group(1), m.group(0)), w)
                            for w in words[1:]])
    if not out:
        problem(f"no conveyor command in script:\n{script}")
    return out


# ---------------------------------------------------------------- kustomize

def load_docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def merge(base, patch):
    """Strategic merge patch, the parts used here: maps merge, lists of maps
    with a `name` merge by name, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and patch and \
            all(isinstance(x, dict) and "name" in x for x in base + patch):
        out = [copy.deepcopy(x) for x in base]
        for p in patch:
            i = next((i for i, x in enumerate(out) if x["name"] == p["name"]), None)
            if i is None:
                out.append(copy.deepcopy(p))
            else:
                out[i] = merge(out[i], p)
        return out
    return copy.deepcopy(patch)


def suffix(data):
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def kustomize(d, top=True):
    """Renders the kustomization in directory d: (objects, {generated name:
    hashed name}). Generated objects get their hash suffix, and references to
    them follow, once the whole tree is rendered (as kustomize does)."""
    k = yaml.safe_load((d / "kustomization.yaml").read_text())
    objs, names = [], {}
    for r in k.get("resources", []):
        p = (d / r).resolve()
        if p.is_dir():
            o, n = kustomize(p, top=False)
            objs += o
            names.update(n)
        else:
            objs += load_docs(p)
    for gen, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        for g in k.get(gen, []):
            data = {}
            for f in g.get("files", []):
                data[f] = (d / f).read_text()
            for lit in g.get("literals", []):
                key, _, val = lit.partition("=")
                data[key] = val
            obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": g["name"]}, "data": data}
            same = lambda o: o["kind"] == kind and o["metadata"]["name"] == g["name"]
            if g.get("behavior") == "replace":
                if not any(map(same, objs)):
                    problem(f"{d}: replaces {kind} {g['name']}, which the base does not generate")
                objs = [o for o in objs if not same(o)]
            elif any(map(same, objs)):
                problem(f"{d}: {kind} {g['name']} generated twice without behavior: replace")
            names[(kind, g["name"])] = f"{g['name']}-{suffix(data)}"
            objs.append(obj)
    for p in k.get("patches", []):
        for patch in load_docs(d / p["path"]):
            kind, name = patch["kind"], patch["metadata"]["name"]
            idx = [i for i, o in enumerate(objs) if o["kind"] == kind and o["metadata"]["name"] == name]
            if not idx:
                problem(f"{d}: patch {p['path']} targets {kind}/{name}, which the base lacks")
                continue
            if patch.get("$patch") == "delete":
                objs.pop(idx[0])
            else:
                objs[idx[0]] = merge(objs[idx[0]], patch)
    for o in objs:
        if "namespace" in k:
            o["metadata"]["namespace"] = k["namespace"]
        for lab in k.get("labels", []):
            o["metadata"].setdefault("labels", {}).update(lab["pairs"])
        for img in k.get("images", []):
            for c in containers(o):
                # As kustomize: matched on the image's current name.
                if c["image"].split(":")[0] == img["name"]:
                    c["image"] = f"{img.get('newName', img['name'])}:{img['newTag']}"
    if not top:
        return objs, names
    for o in objs:
        if o["kind"] in ("ConfigMap", "Secret") and (o["kind"], o["metadata"]["name"]) in names:
            o["metadata"]["name"] = names[(o["kind"], o["metadata"]["name"])]
        for v in volumes(o):
            for key, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                ref = v.get(key)
                if ref:
                    field = "name" if key == "configMap" else "secretName"
                    ref[field] = names.get((kind, ref[field]), ref[field])
    return objs, names


def pod_spec(o):
    if o["kind"] in ("Deployment", "StatefulSet", "Job"):
        return o["spec"]["template"]["spec"]
    return None


def containers(o):
    s = pod_spec(o)
    return s["containers"] if s else []


def volumes(o):
    s = pod_spec(o)
    return s.get("volumes", []) if s else []


def writes(args):
    """The config paths a component writes to: state stores (processors;
    a connector's poll cursor) and label documents."""
    if args[:1] == ["connect"] or args[:1] == ["run"]:
        yield "CONVEYOR_STATE__DIR"
    if args[:2] == ["run", "label"]:
        yield "CONVEYOR_LABEL__DOCUMENTS"


def k8s(tools, out):
    image_env, _ = dockerfile()
    sys.path.insert(0, str(next((tools / "venv/lib").glob("python3*/site-packages"))))
    import kubernetes_validate
    for overlay in sorted((DEPLOY / "k8s/overlays").iterdir()):
        objs, _ = kustomize(overlay)
        where = f"k8s {overlay.name}"
        by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
        for o in objs:
            try:
                kubernetes_validate.validate(o, K8S_VERSION, strict=True)
            except Exception as e:  # the validator's errors name the field
                problem(f"{where}: {o['kind']}/{o['metadata']['name']}: {e}")
        secrets = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Secret"}
        configmaps = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
        services = [o for o in objs if o["kind"] == "Service"]
        pdbs = [o for o in objs if o["kind"] == "PodDisruptionBudget"]
        for o in objs:
            if o["kind"] == "HorizontalPodAutoscaler":
                t = o["spec"]["scaleTargetRef"]
                if (t["kind"], t["name"]) not in by:
                    problem(f"{where}: HPA {o['metadata']['name']} scales missing {t['kind']}/{t['name']}")
            if o["kind"] not in ("Deployment", "StatefulSet", "Job"):
                continue
            name = f"{where}: {o['kind']}/{o['metadata']['name']}"
            labels = o["spec"]["template"]["metadata"]["labels"]
            matches = lambda sel: sel and all(labels.get(k) == v for k, v in sel.items())
            if o["kind"] != "Job":
                if not matches(o["spec"]["selector"]["matchLabels"]):
                    problem(f"{name}: selector does not match its pod labels")
                if not any(matches(p["spec"]["selector"]["matchLabels"]) for p in pdbs):
                    problem(f"{name}: no PodDisruptionBudget selects its pods")
                if not any(matches(s["spec"]["selector"]) for s in services):
                    problem(f"{name}: no Service selects its pods")
            if o["kind"] == "StatefulSet":
                svc = by.get(("Service", o["spec"]["serviceName"]))
                if not svc or svc["spec"].get("clusterIP") != "None":
                    problem(f"{name}: serviceName is not a headless Service")
            mounted = {}
            for v in volumes(o):
                if "configMap" in v and v["configMap"]["name"] not in configmaps:
                    problem(f"{name}: ConfigMap {v['configMap']['name']} does not exist")
                if "secret" in v:
                    mounted[v["name"]] = v["secret"]["secretName"]
            for c in containers(o):
                cname = f"{name} container {c['name']}"
                res = c.get("resources", {})
                if "requests" not in res or "memory" not in res.get("limits", {}):
                    problem(f"{cname}: resources need requests and a memory limit")
                if o["kind"] != "Job":
                    lp = c.get("livenessProbe", {}).get("httpGet", {})
                    rp = c.get("readinessProbe", {}).get("httpGet", {})
                    ports = {p["name"] for p in c.get("ports", [])}
                    if lp.get("path") != "/healthz" or rp.get("path") != "/readyz":
                        problem(f"{cname}: liveness must be /healthz and readiness /readyz")
                    if lp.get("port") not in ports or rp.get("port") not in ports:
                        problem(f"{cname}: probes name a port the container does not declare")
                if not c.get("securityContext", {}).get("readOnlyRootFilesystem"):
                    problem(f"{cname}: root filesystem is writable")
                env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
                files = {}
                config_dir = None
                for m in c.get("volumeMounts", []):
                    vol = next((v for v in volumes(o) if v["name"] == m["name"]), None)
                    if vol is None:
                        claims = [t["metadata"]["name"] for t in o["spec"].get("volumeClaimTemplates", [])]
                        if m["name"] not in claims:
                            problem(f"{cname}: mounts {m['name']}, which is neither a volume nor a claim")
                        continue
                    if "configMap" in vol:
                        cm = configmaps.get(vol["configMap"]["name"], {"data": {}})
                        for key, text in cm["data"].items():
                            files[f"{m['mountPath']}/{key}"] = {"text": text}
                        config_dir = m["mountPath"]
                    if m["name"] in mounted:
                        secret = secrets.get(mounted[m["name"]])
                        for k, v in env.items():
                            if k.endswith("_FILE") and v.startswith(m["mountPath"] + "/"):
                                key = v[len(m["mountPath"]) + 1:]
                                if secret is not None and key not in secret["data"]:
                                    problem(f"{cname}: {k} names key {key}, not in Secret {mounted[m['name']]}")
                                data = secret["data"] if secret is not None else {}
                                files[v] = {"text": data.get(key, "placeholder-secret")}
                for k, v in env.items():
                    if k.endswith("_FILE") and v not in files:
                        problem(f"{cname}: {k}={v} is not in a mounted Secret")
                # Under a read-only root, where the component writes must be
                # a mounted volume.
                mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
                for k in writes(c.get("args", [])):
                    v = env.get(k, image_env.get(k, ""))
                    if not any(v == mp or v.startswith(mp + "/") for mp in mounts):
                        problem(f"{cname}: {k}={v} is not on a mounted volume (read-only root)")
                if config_dir and env.get("CONVEYOR_CONFIG", "").rpartition("/")[0] != config_dir:
                    problem(f"{cname}: CONVEYOR_CONFIG is not in the mounted ConfigMap")
                if c.get("command", [])[:1] == ["/bin/sh"]:
                    commands = script_commands("\n".join(c.get("args", [])), env)
                else:
                    commands = [c.get("args", [])]
                for cmd in commands:
                    out.append({"where": name, "args": cmd, "env": env, "files": files,
                                "long_running": o["kind"] != "Job"})


# ---------------------------------------------------------------- prometheus + grafana

METRIC = re.compile(r"\b(conveyor_[a-z0-9_]+)")


def metric_names(expr, where, names):
    for m in METRIC.findall(expr):
        base = re.sub(r"_(bucket|sum|count)$", "", m) if m.endswith(("_bucket", "_sum", "_count")) else m
        names.setdefault(base, set()).add(where)


def prometheus(tools, names):
    promtool = str(tools / "promtool")
    d = DEPLOY / "prometheus"
    run([promtool, "check", "config", "prometheus.yml"], "promtool check config", cwd=d)
    run([promtool, "check", "rules", "alerts.yml"], "promtool check rules", cwd=d)
    run([promtool, "test", "rules", "alerts.test.yml"], "promtool test rules", cwd=d)
    for g in yaml.safe_load((d / "alerts.yml").read_text())["groups"]:
        for r in g["rules"]:
            metric_names(r["expr"], f"alert {r['alert']}", names)
            if not r.get("annotations", {}).get("runbook", "").startswith("docs/operations.md#"):
                problem(f"alert {r['alert']}: no runbook link")
            anchor = r["annotations"]["runbook"].partition("#")[2]
            if anchor not in anchors(ROOT / "docs/operations.md"):
                problem(f"alert {r['alert']}: runbook anchor #{anchor} is not a heading of docs/operations.md")


def anchors(md):
    if not md.exists():
        return set()
    out = set()
    for line in md.read_text().splitlines():
        if line.startswith("#"):
            t = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^a-z0-9 -]", "", t).replace(" ", "-"))
    return out


def grafana(tools, names, queries):
    g = DEPLOY / "grafana"
    spec = importlib.util.spec_from_file_location("dashboards", g / "dashboards.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ds = yaml.safe_load((g / "provisioning/datasources/conveyor.yml").read_text())
    uids = {d["uid"]: d["type"] for d in ds["datasources"]}
    exprs = []
    for name, want in mod.render().items():
        path = g / "dashboards" / name
        have = json.loads(path.read_text())
        if have != want:
            problem(f"grafana: {path.name} differs from dashboards.py's output (run it)")
        ids = [p["id"] for p in have["panels"]]
        if len(ids) != len(set(ids)):
            problem(f"grafana: {name}: panel ids repeat")
        for p in have["panels"]:
            if p["type"] == "row":
                continue
            where = f"dashboard {have['uid']} panel {p['title']!r}"
            uid = p["datasource"]["uid"]
            if uids.get(uid) != p["datasource"]["type"]:
                problem(f"{where}: data source {uid} is not provisioned")
            if not p.get("targets"):
                problem(f"{where}: no query")
            for t in p["targets"]:
                if "expr" in t:
                    exprs.append((where, t["expr"]))
                    metric_names(t["expr"], where, names)
                if "rawSql" in t:
                    queries.append({"where": where, "sql": t["rawSql"]})
    # promtool parses every expression (as recording rules).
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:expr{i}", "expr": e} for i, (_, e) in enumerate(exprs)]}]}
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "dashboards.yml"
        path.write_text(yaml.safe_dump(rules))
        run([str(tools / "promtool"), "check", "rules", path], "dashboards' PromQL")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools", required=True, type=pathlib.Path)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    commands, names, queries = [], {}, []
    compose(a.tools, commands)
    k8s(a.tools, commands)
    prometheus(a.tools, names)
    grafana(a.tools, names, queries)
    if PROBLEMS:
        print(f"{len(PROBLEMS)} problem(s) in deploy artifacts:", file=sys.stderr)
        for p in PROBLEMS:
            print(f"  - {p}", file=sys.stderr)
        sys.exit(1)
    if a.json:
        print(json.dumps({"commands": commands,
                          "metrics": {k: sorted(v) for k, v in sorted(names.items())},
                          "clickhouse_queries": queries}, indent=1))
    else:
        print(f"deploy artifacts ok: {len(commands)} commands, {len(names)} metric names, "
              f"{len(queries)} ClickHouse queries")


if __name__ == "__main__":
    main()
