"""Cross-file checks for deploy/ that schema validators can't make.

Run by deploy/validate.sh with the tools venv's Python (PyYAML, dockerfile). Each
subcommand prints one line per problem, `file: what is wrong`, and exits 1 if there was
any:

  kubernetes DIR            kustomization lists every manifest; names, labels, ports,
                            mounts and the config's token files agree across manifests
  compose FILE CONFIG       bind mounts, secrets and build inputs exist; the config's
                            token files are secrets the service mounts
  dockerfile DOCKERFILE ROOT
                            parses with BuildKit's parser; the final stage has a
                            non-root USER, HEALTHCHECK, EXPOSE and ENTRYPOINT; every
                            COPY source exists and is not excluded by .dockerignore
  envfile FILE              KEY=VALUE lines only
  extract-toml DIR OUT      writes each ConfigMap's *.toml data to OUT, prints the paths
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import sys
import tomllib
from pathlib import Path

import yaml

problems: list[str] = []


def problem(where: object, what: str) -> None:
    problems.append(f"{where}: {what}")


def load_all(path: Path) -> list[dict]:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        problem(path, f"not valid YAML: {e}")
        return []


def token_paths(config: dict) -> list[str]:
    """Every file the config reads a secret from."""
    paths = [t["value_file"] for t in config.get("server", {}).get("tokens", []) if "value_file" in t]
    for app in config.get("apps", {}).values():
        for env in app.get("envs", {}).values():
            live = env.get("live") or {}
            if "bearer_token_file" in live:
                paths.append(live["bearer_token_file"])
            for header in (live.get("secret_headers") or {}).values():
                if "file" in header:
                    paths.append(header["file"])
            oauth = live.get("oauth") or {}
            for key in ("client_secret_file", "password_file"):
                if key in oauth:
                    paths.append(oauth[key])
    return paths


# ---------------------------------------------------------------- kubernetes


def pod_spec(doc: dict) -> dict | None:
    kind = doc.get("kind")
    spec = doc.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return spec.get("template", {}).get("spec")
    if kind == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    return None


def check_kubernetes(d: Path) -> None:
    kfile = d / "kustomization.yaml"
    kust = (load_all(kfile) or [{}])[0]
    listed = kust.get("resources", [])
    for r in listed:
        if not (d / r).is_file():
            problem(kfile, f"resource {r} does not exist")
    for f in sorted(d.glob("*.yaml")):
        if f.name != "kustomization.yaml" and not f.name.endswith(".example.yaml") and f.name not in listed:
            problem(kfile, f"{f.name} is not listed in resources (name it *.example.yaml if it is an example)")
    kust_images = {i.get("name") for i in kust.get("images", [])}

    docs: list[tuple[Path, dict]] = [(f, doc) for f in sorted(d.glob("*.yaml")) if f != kfile for doc in load_all(f)]
    by_kind: dict[str, dict[str, tuple[Path, dict]]] = {}
    for f, doc in docs:
        by_kind.setdefault(doc.get("kind", ""), {})[doc.get("metadata", {}).get("name", "")] = (f, doc)
    configmaps = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    accounts = by_kind.get("ServiceAccount", {})

    pods: list[tuple[Path, str, dict, dict]] = []  # file, name, pod labels, pod spec
    for f, doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        name = doc["metadata"]["name"]
        labels = (
            doc["spec"].get("template", {}).get("metadata", {}).get("labels")
            or doc["spec"].get("jobTemplate", {}).get("spec", {}).get("template", {}).get("metadata", {}).get("labels")
            or {}
        )
        pods.append((f, name, labels, spec))
        sel = doc["spec"].get("selector", {}).get("matchLabels")
        if sel and any(labels.get(k) != v for k, v in sel.items()):
            problem(f, f"{name}: selector {sel} does not match the pod labels {labels}")
        check_pod(f, name, spec, configmaps, secrets, accounts, kust_images)

    for kind in ("Service", "PodDisruptionBudget"):
        for name, (f, doc) in by_kind.get(kind, {}).items():
            sel = doc["spec"].get("selector", {})
            sel = sel.get("matchLabels", sel) if kind == "PodDisruptionBudget" else sel
            matched = [p for p in pods if all(p[2].get(k) == v for k, v in sel.items())]
            if not matched:
                problem(f, f"{kind} {name}: selector {sel} matches no pod template")
            if kind == "Service":
                for port in doc["spec"].get("ports", []):
                    target = port.get("targetPort")
                    for pf, pname, _, spec in matched:
                        names = {p.get("name") for c in spec["containers"] for p in c.get("ports", [])}
                        numbers = {p.get("containerPort") for c in spec["containers"] for p in c.get("ports", [])}
                        if target not in names | numbers:
                            problem(f, f"Service {name}: targetPort {target!r} is no port of {pname}")


def check_pod(f, name, spec, configmaps, secrets, accounts, kust_images) -> None:
    sa = spec.get("serviceAccountName")
    if sa and sa not in accounts:
        problem(f, f"{name}: serviceAccountName {sa} is not defined")
    sc = spec.get("securityContext", {})
    if not sc.get("runAsNonRoot"):
        problem(f, f"{name}: pod securityContext.runAsNonRoot is not true")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for v in volumes.values():
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            problem(f, f"{name}: volume {v['name']}: ConfigMap {v['configMap']['name']} is not defined")
        if "secret" in v and v["secret"]["secretName"] not in secrets:
            problem(f, f"{name}: volume {v['name']}: Secret {v['secret']['secretName']} is not defined (not even as an example)")
    for c in spec["containers"]:
        where = f"{name}/{c['name']}"
        if c.get("image") not in kust_images:
            problem(f, f"{where}: image {c.get('image')!r} is not set in kustomization.yaml images")
        csc = c.get("securityContext", {})
        if csc.get("readOnlyRootFilesystem") is not True or csc.get("allowPrivilegeEscalation") is not False:
            problem(f, f"{where}: needs readOnlyRootFilesystem: true and allowPrivilegeEscalation: false")
        if "ALL" not in csc.get("capabilities", {}).get("drop", []):
            problem(f, f"{where}: capabilities.drop must include ALL")
        port_names = {p.get("name") for p in c.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if isinstance(port, str) and port not in port_names:
                problem(f, f"{where}: {probe} port {port!r} is not a named container port")
        mounts: dict[str, dict] = {}
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problem(f, f"{where}: volumeMount {m['name']} has no volume")
            else:
                mounts[m["mountPath"].rstrip("/")] = volumes[m["name"]]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        cfg_path = env.get("JETVAULT_CONFIG")
        if not cfg_path:
            problem(f, f"{where}: JETVAULT_CONFIG is not set")
            continue
        config = resolve_file(f, where, cfg_path, mounts, configmaps, secrets)
        if config is None:
            continue
        try:
            parsed = tomllib.loads(config)
        except tomllib.TOMLDecodeError as e:
            problem(f, f"{where}: {cfg_path} is not valid TOML: {e}")
            continue
        for path in token_paths(parsed):
            resolve_file(f, where, path, mounts, configmaps, secrets)


def resolve_file(f, where, path, mounts, configmaps, secrets) -> str | None:
    """The content of `path` inside the container, from a mounted ConfigMap or Secret."""
    directory, key = posixpath.split(path)
    vol = mounts.get(directory)
    if vol is None:
        problem(f, f"{where}: {path}: no volume is mounted at {directory}")
        return None
    if "configMap" in vol:
        _, doc = configmaps.get(vol["configMap"]["name"], (None, {}))
        data = doc.get("data", {})
    elif "secret" in vol:
        _, doc = secrets.get(vol["secret"]["secretName"], (None, {}))
        data = {**doc.get("data", {}), **doc.get("stringData", {})}
    else:
        problem(f, f"{where}: {path}: the volume at {directory} is neither a ConfigMap nor a Secret")
        return None
    if key not in data:
        problem(f, f"{where}: {path}: key {key!r} is not in the volume's source (keys: {sorted(data)})")
        return None
    return data[key]


def extract_toml(d: Path, out: Path) -> None:
    for f in sorted(d.glob("*.yaml")):
        for doc in load_all(f):
            if doc.get("kind") != "ConfigMap":
                continue
            for key, value in doc.get("data", {}).items():
                if key.endswith(".toml"):
                    target = out / f"{f.stem}.{doc['metadata']['name']}.{key}"
                    target.write_text(value)
                    print(target)


# ------------------------------------------------------------------- compose


def check_compose(path: Path, config_path: Path | None) -> None:
    doc = (load_all(path) or [{}])[0]
    base = path.parent
    services = doc.get("services", {})
    defined_secrets = doc.get("secrets", {}) or {}
    for name, secret in defined_secrets.items():
        if "file" in secret and not (base / secret["file"]).exists():
            problem(path, f"secret {name}: file {secret['file']} does not exist")
    named_volumes = set((doc.get("volumes") or {}).keys())
    for sname, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep in deps if isinstance(deps, (list, dict)) else []:
            if dep not in services:
                problem(path, f"{sname}: depends_on {dep} is not a service")
        build = svc.get("build")
        if isinstance(build, dict):
            ctx = base / build.get("context", ".")
            if not ctx.is_dir():
                problem(path, f"{sname}: build context {ctx} does not exist")
            elif not (ctx / build.get("dockerfile", "Dockerfile")).is_file():
                problem(path, f"{sname}: dockerfile {build.get('dockerfile')} does not exist in {ctx}")
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if source.startswith((".", "/")):
                if not (base / source).exists():
                    problem(path, f"{sname}: bind mount source {source} does not exist")
            elif source and source not in named_volumes:
                problem(path, f"{sname}: volume {source} is not declared under volumes")
        mounted = set()
        for s in svc.get("secrets", []):
            sname_ = s if isinstance(s, str) else s.get("source")
            target = s if isinstance(s, str) else s.get("target", sname_)
            if sname_ not in defined_secrets:
                problem(path, f"{sname}: secret {sname_} is not defined under secrets")
            mounted.add(target if target.startswith("/") else f"/run/secrets/{target}")
        if config_path is None or not isinstance(svc.get("environment"), dict):
            continue
        in_container = svc["environment"].get("JETVAULT_CONFIG")
        if not in_container:
            continue
        binds = [v.split(":") for v in svc.get("volumes", []) if isinstance(v, str)]
        host = [b[0] for b in binds if len(b) > 1 and b[1] == in_container]
        if not host:
            problem(path, f"{sname}: JETVAULT_CONFIG={in_container} is not a bind-mounted file")
            continue
        if (base / host[0]).resolve() != config_path.resolve():
            problem(path, f"{sname}: mounts {host[0]} as the config, expected {config_path}")
        config = tomllib.loads(config_path.read_text())
        for token in token_paths(config):
            if token not in mounted:
                problem(config_path, f"{token} is not a secret mounted into {sname} (mounted: {sorted(mounted)})")


# ---------------------------------------------------------------- dockerfile


def dockerignore_excludes(patterns: list[str], rel: str) -> bool:
    """Docker's rule: the last pattern that matches the path or a parent decides."""
    parts = rel.strip("/").split("/")
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pat = raw[1:] if negate else raw
        pat = pat.strip().strip("/")
        pat = posixpath.normpath(pat) if pat else pat
        if any(fnmatch.fnmatchcase("/".join(parts[: i + 1]), pat) for i in range(len(parts))):
            excluded = not negate
    return excluded


def check_dockerfile(path: Path, root: Path) -> None:
    import dockerfile

    try:
        cmds = dockerfile.parse_file(str(path))
    except dockerfile.GoParseError as e:
        problem(path, f"does not parse: {e}")
        return
    known = {
        "from", "run", "cmd", "label", "maintainer", "expose", "env", "add", "copy", "entrypoint",
        "volume", "user", "workdir", "arg", "onbuild", "stopsignal", "healthcheck", "shell",
    }
    for c in cmds:
        if c.cmd.lower() not in known:
            problem(path, f"line {c.start_line}: unknown instruction {c.cmd}")
    stages: list[list] = []
    for c in cmds:
        if c.cmd.lower() == "from":
            stages.append([])
        if stages:
            stages[-1].append(c)
    if not stages:
        problem(path, "no FROM")
        return
    final = {c.cmd.lower(): c for c in stages[-1]}  # the last of each instruction wins
    user = final.get("user")
    if user is None:
        problem(path, "the final stage has no USER: the container would run as root")
    elif re.fullmatch(r"(root|0)(:.*)?", user.value[0]):
        problem(path, f"the final stage runs as {user.value[0]}")
    health = final.get("healthcheck")
    if health is None or health.value[0].upper() == "NONE":
        problem(path, "the final stage has no HEALTHCHECK")
    elif "/healthz" not in " ".join(health.value):
        problem(path, "the HEALTHCHECK does not request /healthz")
    for needed in ("expose", "entrypoint"):
        if needed not in final:
            problem(path, f"the final stage has no {needed.upper()}")
    ignore_file = root / ".dockerignore"
    if not ignore_file.is_file():
        problem(ignore_file, "missing: the build context would include target/ and .git/")
        patterns = []
    else:
        patterns = [
            ln.strip() for ln in ignore_file.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")
        ]
    for c in cmds:
        if c.cmd.lower() not in ("copy", "add") or any(fl.startswith("--from") for fl in c.flags):
            continue
        for src in c.value[:-1]:
            if not (root / src).exists():
                problem(path, f"line {c.start_line}: COPY source {src} does not exist")
            elif dockerignore_excludes(patterns, src):
                problem(path, f"line {c.start_line}: COPY source {src} is excluded by .dockerignore")


# ------------------------------------------------------------------- envfile


def check_envfile(path: Path) -> None:
    for n, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if s and not s.startswith("#") and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", s):
            problem(path, f"line {n}: not KEY=VALUE: {s}")


def main(argv: list[str]) -> int:
    match argv:
        case ["kubernetes", d]:
            check_kubernetes(Path(d))
        case ["compose", f]:
            check_compose(Path(f), None)
        case ["compose", f, config]:
            check_compose(Path(f), Path(config))
        case ["dockerfile", f, root]:
            check_dockerfile(Path(f), Path(root))
        case ["envfile", f]:
            check_envfile(Path(f))
        case ["extract-toml", d, out]:
            extract_toml(Path(d), Path(out))
        case _:
            print(__doc__, file=sys.stderr)
            return 2
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
