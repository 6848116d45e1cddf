"""Version skew between the Gateway API CRDs and the components that read them.

    findings = gwlib.compat.check(gateway_api="v1.2.1", linkerd="2.17", traefik="v3.2")
    gwlib.compat.frame(findings)            # a table; [f.to_dict() for f in findings] for JSON

The Gateway API is not part of Kubernetes: its CRDs are installed separately, in a release and
a channel, and every component reads particular kinds at particular API versions. The talk's
three rough edges are all version skew, and each is a finding here:

1. **The CRDs are not in-tree**: something must install and own them. Linkerd up to 2.17 (and
   2.18's Helm chart) installs its own copy by default; Traefik's chart bundles another; from
   2.19 Linkerd installs none (``crds-not-in-tree``, ``no-gateway-api``, ``mixed-bundle``).
2. **Linkerd did not read GRPCRoute v1** (linkerd2 #13032): 2.16/2.17 read v1alpha2 only,
   which the standard channel of Gateway API >= 1.1 does not serve and >= 1.2 removed; fixed in
   2.18 (``linkerd-grpcroute-v1``). Gateway API v1.1.0 also broke v1alpha2 status (#3411), fixed
   by v1.1.1 (``grpcroute-v1alpha2-status``).
3. **Traefik's Helm chart bundles the CRDs** (traefik-helm-chart #1209, #1223): installing
   Traefik installs *its* Gateway API release (standard channel) into the cluster
   (``traefik-chart-crds``).

Inputs: the installed CRDs (files, e.g. ``kubectl get crd -o yaml``; their
``gateway.networking.k8s.io/bundle-version`` and ``/channel`` annotations and served versions
are read) or a planned ``gateway_api`` release and ``channel``; and component versions
(Linkerd ``2.17``, ``2.17.1``, ``stable-2.14.10`` or ``edge-24.11.8``; Traefik ``v3.2``;
the Argo Rollouts Gateway API plugin ``v0.13.0``). Without CRDs, the CRDs the components'
installers would put on the cluster are assumed (and said). The knowledge is in
``data/compat/*.yaml``, each entry with its source; each finding names its source.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data" / "compat"
#: every version scripts/cluster-up.sh installs, one ``NAME=value`` line each
BOOTSTRAP_VERSIONS = Path(__file__).resolve().parent.parent / "scripts" / "versions.env"


def bootstrap_versions(path: str | os.PathLike | None = None) -> dict[str, str]:
    """The versions the cluster bootstrap pins (``scripts/versions.env``): ``{"LINKERD_VERSION":
    "edge-26.6.3", ...}`` — what to hand :func:`check` for the cluster it makes."""
    out = {}
    for line in Path(path or BOOTSTRAP_VERSIONS).read_text().splitlines():
        m = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(\S+)", line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out
GROUP = "gateway.networking.k8s.io"
BUNDLE = "gateway.networking.k8s.io/bundle-version"
CHANNEL = "gateway.networking.k8s.io/channel"
CHANNELS = ("standard", "experimental")
SEVERITIES = ("error", "warning", "info")


class CompatError(ValueError):
    """Bad input (a version gwlib cannot parse, unreadable CRD files): a usage error."""


@dataclass(frozen=True)
class Finding:
    severity: str                 # "error" | "warning" | "info"
    components: tuple[str, ...]   # e.g. ("linkerd", "gateway-api")
    kind: str                     # e.g. "GRPCRoute", "CustomResourceDefinition"
    message: str
    fix: str
    source: str
    check: str = ""               # the id in data/compat/findings.yaml

    def to_dict(self) -> dict:
        """The design's JSON shape (§4.1)."""
        return {"severity": self.severity, "components": list(self.components), "kind": self.kind,
                "message": self.message, "fix": self.fix, "source": self.source}


# --------------------------------------------------------------------------- data

@functools.lru_cache(maxsize=None)
def data(name: str) -> dict:
    """One file of ``data/compat`` (``gateway-api``, ``linkerd``, ``traefik``,
    ``argo-rollouts-plugin``, ``findings``), parsed."""
    import yaml
    with open(DATA / f"{name}.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _check(cid: str) -> dict:
    return data("findings")["checks"][cid]


def _finding(cid: str, severity: str, components, message: str, *, fix: str | None = None,
             source: str | None = None, kind: str | None = None) -> Finding:
    c = _check(cid)
    return Finding(severity, tuple(dict.fromkeys(components)), kind or c["kind"], message,
                   " ".join((fix or c["fix"]).split()), source or c["source"], cid)


# --------------------------------------------------------------------------- versions

Version = tuple[int, int, int]


def parse_semver(text: str, what: str) -> Version:
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?", str(text).strip())
    if not m:
        raise CompatError(f"{what} version {text!r}: expected e.g. v1.2.1")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _fmt(v: Version) -> str:
    return f"v{v[0]}.{v[1]}.{v[2]}"


def gateway_api_release(version: str) -> dict:
    """The data entry of a Gateway API release (exact, else the nearest older patch of the
    same minor, else an error)."""
    v = parse_semver(version, "Gateway API")
    rels = data("gateway-api")["releases"]
    exact = [r for r in rels if parse_semver(r["version"], "") == v]
    if exact:
        return exact[0]
    same_minor = [r for r in rels if parse_semver(r["version"], "")[:2] == v[:2]
                  and parse_semver(r["version"], "") < v]
    if same_minor:
        return max(same_minor, key=lambda r: parse_semver(r["version"], ""))
    known = ", ".join(r["version"] for r in rels)
    raise CompatError(f"Gateway API {version}: not a release gwlib knows ({known})")


@dataclass
class LinkerdRelease:
    entry: dict | None            # data/compat/linkerd.yaml release (None: before 2.14)
    asked: str
    between: bool = False         # an edge between two releases (modelled as the older one)
    note: str = ""

    @property
    def name(self) -> str:
        if self.entry is None:
            return f"Linkerd {self.asked}"
        e = self.entry.get("edge")
        base = f"Linkerd {self.entry['version']}" + (f" ({e})" if e and not self.asked.startswith("edge") else "")
        return f"Linkerd {self.asked} (like {self.entry['version']})" if self.between else (
            f"Linkerd {self.asked}" if self.asked.startswith("edge") else base)


def _edge(text: str) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"edge-(\d{2})\.(\d{1,2})\.(\d+)", text.strip())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def linkerd_release(version: str) -> LinkerdRelease:
    """Linkerd ``2.17``, ``2.17.1``, ``stable-2.14.10``, ``version-2.18`` or ``edge-24.11.8``."""
    rels = data("linkerd")["releases"]
    text = str(version).strip()
    edge = _edge(text)
    if edge is not None:
        known = [(r, _edge(r["edge"])) for r in rels if r.get("edge")]
        for r, e in known:
            if e == edge:
                return LinkerdRelease(r, text)
        older = [(r, e) for r, e in known if e < edge]
        if edge < (23, 7, 1):
            return LinkerdRelease(None, text, note="older than 2.14 (edge-23.7.1)")
        if not older:
            return LinkerdRelease(rels[0], text, between=True)
        r, _ = max(older, key=lambda t: t[1])
        newest = max(e for _, e in known)
        return LinkerdRelease(r, text, between=edge < newest,
                              note="" if edge < newest else f"newer than gwlib's data (last: {r['version']})")
    m = re.fullmatch(r"(?:stable-|version-)?v?2\.(\d+)(?:\.(\d+))?", text)
    if not m:
        raise CompatError(f"Linkerd version {version!r}: expected 2.17, 2.17.1 or an edge name such as edge-24.11.8")
    minor = int(m.group(1))
    by_minor = {int(r["version"].split(".")[1]): r for r in rels}
    if minor in by_minor:
        return LinkerdRelease(by_minor[minor], text)
    if minor < min(by_minor):
        return LinkerdRelease(None, text, note=f"older than 2.{min(by_minor)}")
    last = by_minor[max(by_minor)]
    return LinkerdRelease(last, text, note=f"newer than gwlib's data (last: {last['version']})")


def traefik_release(version: str) -> dict | None:
    """The newest Traefik entry not newer than ``version`` (None: older than gwlib's data)."""
    v = parse_semver(version, "Traefik")
    rels = sorted(data("traefik")["releases"], key=lambda r: parse_semver(r["version"], ""))
    older = [r for r in rels if parse_semver(r["version"], "") <= v]
    return older[-1] if older else None


def plugin_version(version: str) -> Version:
    return parse_semver(version, "Argo Rollouts plugin")


# --------------------------------------------------------------------------- CRDs

@dataclass
class CRDs:
    """What the installed (or planned) Gateway API CRDs serve."""
    served: dict[str, list[str]]                     # kind -> served versions
    origin: str                                      # where this came from, for messages
    bundles: dict[str, set[str]] = field(default_factory=dict)   # bundle-version -> kinds
    channels: dict[str, set[str]] = field(default_factory=dict)  # channel -> kinds
    release: dict | None = None                      # the data entry, when one release
    channel: str | None = None
    unannotated: list[str] = field(default_factory=list)
    installers: list[str] = field(default_factory=list)          # components whose chart installs them

    @property
    def version(self) -> Version | None:
        return parse_semver(self.release["version"], "") if self.release else None

    def serves(self, kind: str, version: str) -> bool:
        return version in (self.served.get(kind) or [])

    def label(self) -> str:
        if self.release is not None:
            return f"Gateway API {self.release['version']} {self.channel or ''}".strip()
        return self.origin


def planned(gateway_api: str, channel: str = "standard", origin: str | None = None) -> CRDs:
    """The CRDs of a Gateway API release and channel, from ``data/compat/gateway-api.yaml``."""
    if channel not in CHANNELS:
        raise CompatError(f"channel {channel!r}: use standard or experimental")
    rel = gateway_api_release(gateway_api)
    served = {k: list(v) for k, v in (rel["served"].get(channel) or {}).items()}
    kinds = set(served)
    return CRDs(served=served, origin=origin or f"Gateway API {rel['version']} {channel}",
                bundles={rel["version"]: kinds}, channels={channel: kinds}, release=rel, channel=channel)


def _crd_docs(path: str | os.PathLike) -> list[dict]:
    import yaml
    p = Path(path)
    if not p.exists():
        raise CompatError(f"{path}: no such file or directory")
    files = sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml", ".json")) if p.is_dir() else [p]
    docs: list[dict] = []
    for f in files:
        try:
            for d in yaml.safe_load_all(f.read_text(encoding="utf-8")):
                if isinstance(d, dict) and d.get("kind") == "List":
                    docs += [i for i in d.get("items") or [] if isinstance(i, dict)]
                elif isinstance(d, dict):
                    docs.append(d)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CompatError(f"{f}: cannot read: {str(exc).splitlines()[0]}") from None
    return docs


def installed(crds: str | os.PathLike | list[dict]) -> CRDs:
    """The Gateway API CRDs in files (``kubectl get crd -o yaml`` output, the release's
    ``standard-install.yaml``, a folder of them) or a list of CRD dicts."""
    docs = crds if isinstance(crds, list) else _crd_docs(crds)
    served: dict[str, list[str]] = {}
    bundles: dict[str, set[str]] = {}
    channels: dict[str, set[str]] = {}
    unannotated: list[str] = []
    for d in docs:
        if d.get("kind") != "CustomResourceDefinition" or (d.get("spec") or {}).get("group") != GROUP:
            continue
        spec = d["spec"]
        kind = (spec.get("names") or {}).get("kind") or ""
        vers = spec.get("versions") or []
        storage = [v["name"] for v in vers if v.get("served", True) and v.get("storage")]
        served[kind] = storage + [v["name"] for v in vers if v.get("served", True) and not v.get("storage")]
        ann = (d.get("metadata") or {}).get("annotations") or {}
        if ann.get(BUNDLE):
            bundles.setdefault(ann[BUNDLE], set()).add(kind)
        else:
            unannotated.append(kind)
        if ann.get(CHANNEL):
            channels.setdefault(ann[CHANNEL], set()).add(kind)
    release = None
    channel = next(iter(channels)) if len(channels) == 1 else None
    if len(bundles) == 1:
        try:
            release = gateway_api_release(next(iter(bundles)))
        except CompatError:
            release = None
    origin = "the installed CRDs" + (f" (bundle-version {' and '.join(sorted(bundles))})" if bundles else "")
    return CRDs(served=served, origin=origin, bundles=bundles, channels=channels, release=release,
                channel=channel, unannotated=sorted(unannotated))


# --------------------------------------------------------------------------- the check

def _installs_by_default(rel: dict) -> bool:
    by = (rel.get("crds") or {}).get("installed_by_default") or {}
    return by.get("helm") is True or by.get("cli") is True


def _linkerd_bundle(rel: dict) -> CRDs:
    c = rel["crds"]
    kinds = set(c["served"])
    return CRDs(served={k: list(v) for k, v in c["served"].items()},
                origin=f"Linkerd {rel['version']}'s linkerd-crds (Gateway API {c['bundle_version']} {c['channel']})",
                bundles={c["bundle_version"]: kinds}, channels={c["channel"]: kinds},
                release=_try_release(c["bundle_version"]), channel=c["channel"], installers=["linkerd"])


def _try_release(version: str) -> dict | None:
    try:
        return gateway_api_release(re.sub(r"-dev$", "", version))
    except CompatError:
        return None


def _traefik_bundle(rel: dict) -> CRDs:
    crds = planned(rel["gateway_api"], "standard",
                   origin=f"Traefik {rel['version']}'s Helm chart (Gateway API {rel['gateway_api']} standard)")
    crds.installers = ["traefik"]
    return crds


def check(crds: Any = None, gateway_api: str | None = None, channel: str | None = None,
          linkerd: str | None = None, traefik: str | None = None,
          argo_rollouts_plugin: str | None = None) -> list[Finding]:
    """Findings for a stack (see the module docstring). ``crds``: a path or CRD dicts;
    ``gateway_api``/``channel``: a planned release instead. Raises :class:`CompatError`
    for input it cannot read."""
    if crds is not None and gateway_api is not None:
        raise CompatError("give the installed CRDs or a planned Gateway API release, not both")
    if channel is not None and gateway_api is None:
        raise CompatError("--channel goes with --gateway-api")
    L = linkerd_release(linkerd) if linkerd else None
    T = traefik_release(traefik) if traefik else None
    P = plugin_version(argo_rollouts_plugin) if argo_rollouts_plugin else None
    out: list[Finding] = []

    if L is not None and L.note and L.entry is not None:
        out.append(_finding("linkerd-range", "info", ["linkerd"],
                            f"{L.name} is {L.note}; it is checked as "
                            + (L.entry["version"] if L.entry else "not modelled"),
                            fix="Check the Linkerd release notes for its Gateway API support.",
                            source=data("linkerd")["matrix_source"]))
    if L is not None and L.entry is None:
        out.append(_finding("linkerd-range", "warning", ["linkerd", "gateway-api"],
                            f"{L.name} reads no gateway.networking.k8s.io routes at all (2.12/2.13 read only "
                            "policy.linkerd.io HTTPRoutes; gateway.networking.k8s.io HTTPRoute from 2.14)",
                            fix="Upgrade Linkerd to 2.18 or later to use Gateway API routes in the mesh.",
                            source="https://linkerd.io/2023/08/23/announcing-linkerd-2.14/", kind="HTTPRoute"))
        L = None
    if traefik and T is None:
        out.append(_finding("traefik-range", "info", ["traefik"],
                            f"Traefik {traefik} is older than gwlib's data (v3.1): its Gateway API support is not checked"))

    # --- which CRDs are (or will be) on the cluster
    installers: list[CRDs] = []
    if L is not None and _installs_by_default(L.entry):
        installers.append(_linkerd_bundle(L.entry))
    if T is not None:
        installers.append(_traefik_bundle(T))
    if crds is not None:
        have = installed(crds)
        out += _crd_findings(have, L)
    elif gateway_api is not None:
        have = planned(gateway_api, channel or "standard")
    else:
        have = None

    if have is not None:
        # you manage the CRDs: a chart that installs its own fights you
        for inst in installers:
            same = inst.version is not None and have.version is not None and inst.version[:2] == have.version[:2] \
                and inst.channel == have.channel
            if same:
                continue
            if "traefik" in inst.installers:
                out.append(_finding("traefik-chart-crds", "warning", ["traefik", "gateway-api"],
                                    f"{inst.origin} bundles the Gateway API CRDs, but the cluster has {have.label()}: "
                                    "the chart would install or claim its own release (Helm installs crds/ when "
                                    "missing and never upgrades them)"))
            else:
                opt = (L.entry.get("crds") or {}).get("opt_out", "")
                out.append(_finding("crds-not-in-tree", "warning", ["linkerd", "gateway-api"],
                                    f"{inst.origin} is installed by default, over {have.label()}: "
                                    f"install Linkerd with {opt} (linkerd2 #12232: `linkerd install --crds` "
                                    "messes up an existing Gateway API installation)"))
    else:
        if len(installers) >= 2:
            a, b = installers
            out.append(_finding("crds-not-in-tree", "error", ["gateway-api", "linkerd", "traefik"],
                                "The Gateway API CRDs are not part of Kubernetes and nobody chose them: "
                                f"{a.origin} and {b.origin} both install them, in different releases and "
                                "channels; whichever is applied last wins, and the other component reads kinds "
                                "or versions that are not served"))
            out.append(_finding("traefik-chart-crds", "error", ["traefik", "gateway-api"],
                                f"{b.origin} bundles the Gateway API CRDs with Traefik itself: installing or "
                                "upgrading Traefik decides the cluster's Gateway API release for every other "
                                "component (Linkerd, the Argo Rollouts plugin)"))
            have = b   # the talk's case: Traefik's chart is applied, Linkerd's older copy loses
        elif len(installers) == 1:
            have = installers[0]
            cid = "traefik-chart-crds" if "traefik" in have.installers else "crds-not-in-tree"
            out.append(_finding(cid, "warning", [*have.installers, "gateway-api"],
                                f"The Gateway API CRDs are not part of Kubernetes and none are given: the cluster's "
                                f"would be {have.origin}, installed as a side effect of a chart, not chosen by you"))
        elif L is not None or T is not None or P is not None:
            sev = "error" if L is not None and not _installs_by_default(L.entry) else "warning"
            who = f"{L.name} does not install them" if L is not None and sev == "error" else "nothing given installs them"
            out.append(_finding("no-gateway-api" if sev == "error" else "crds-not-in-tree", sev,
                                ["gateway-api", *(["linkerd"] if L else [])],
                                f"The Gateway API CRDs are not part of Kubernetes and none are given: {who}"))

    if have is None:
        return _sorted(out)
    comps_from = list(dict.fromkeys(have.installers))
    out += _reader_findings(have, L, T, P, linkerd, traefik, argo_rollouts_plugin, comps_from)
    return _sorted(out)


def _crd_findings(have: CRDs, L: LinkerdRelease | None) -> list[Finding]:
    out = []
    if not have.served:
        out.append(_finding("no-gateway-api", "error" if L is not None and L.entry
                            and parse_semver(L.entry["version"], "") >= (2, 18, 0) else "warning",
                            ["gateway-api", *(["linkerd"] if L else [])],
                            f"{have.origin}: no gateway.networking.k8s.io CRDs at all"))
        return out
    if len(have.bundles) > 1 or len(have.channels) > 1:
        parts = [f"{b}: {', '.join(sorted(k))}" for b, k in sorted(have.bundles.items())]
        parts += [f"{c}: {', '.join(sorted(k))}" for c, k in sorted(have.channels.items())] if len(have.channels) > 1 else []
        out.append(_finding("mixed-bundle", "error", ["gateway-api"],
                            "The CRDs come from different Gateway API releases or channels (different installers "
                            "own them): " + "; ".join(parts)))
    if have.unannotated:
        out.append(_finding("mixed-bundle", "warning", ["gateway-api"],
                            f"CRDs without a {BUNDLE} annotation (not installed from a Gateway API release, or "
                            f"edited): {', '.join(have.unannotated)}",
                            fix="Reinstall the Gateway API CRDs from a release's install YAML."))
    if "HTTPRoute" not in have.served:
        out.append(_finding("no-gateway-api", "error", ["gateway-api"],
                            f"{have.origin}: no HTTPRoute CRD (the kind every component here reads)"))
    return out


def _reader_findings(have: CRDs, L, T, P, linkerd, traefik, plugin, comps_from) -> list[Finding]:
    out: list[Finding] = []
    where = have.label() + (f" (from {' and '.join(i.capitalize() for i in have.installers)}'s chart)"
                            if have.installers else "")
    linkerd_error = False
    if L is not None:
        reads = L.entry.get("reads") or {}
        for kind, versions in reads.items():
            if kind not in have.served:
                continue  # that CRD is absent: no object of the kind can exist, nothing to read
            if any(have.serves(kind, v) for v in versions):
                continue
            sev = "warning" if L.between else "error"
            extra = (f" ({L.name} lies between 2.17 and 2.18: the switch to v1 landed during edge-25.2/25.3, "
                     "#13643)") if L.between else ""
            if kind == "GRPCRoute" and "v1alpha2" in versions:
                comps = ["linkerd", "gateway-api", *comps_from] + (["argo-rollouts-plugin"] if P else [])
                removed = have.version is not None and have.version >= (1, 2, 0)
                out.append(_finding("linkerd-grpcroute-v1", sev, comps,
                                    f"{L.name} reads GRPCRoute v1alpha2 only; in {where}, GRPCRoute is served as "
                                    f"{', '.join(have.served[kind])}"
                                    + (" (v1alpha2 was removed in v1.2.0)" if removed else
                                       " (the standard channel serves no alpha versions)")
                                    + ": Linkerd ignores every GRPCRoute" + extra,
                                    fix=None if not removed else
                                    "Upgrade Linkerd to 2.18 (edge-25.4.4) or later, which reads GRPCRoute v1 "
                                    "(v1alpha2 no longer exists from Gateway API v1.2.0)."))
            elif kind == "HTTPRoute" and "v1" in versions:
                out.append(_finding("linkerd-httproute-v1", sev, ["linkerd", "gateway-api", *comps_from],
                                    f"{L.name} reads HTTPRoute v1; in {where}, HTTPRoute is served as "
                                    f"{', '.join(have.served[kind])}: its CLI refuses to install (#13938)" + extra))
            else:
                out.append(_finding("linkerd-range", sev, ["linkerd", "gateway-api"],
                                    f"{L.name} reads {kind} {', '.join(versions)}; in {where}, it is served as "
                                    f"{', '.join(have.served[kind])}" + extra, kind=kind))
            linkerd_error = True
        if have.version is not None and have.version[:2] == (1, 1) and have.version[2] == 0 \
                and "v1alpha2" in (reads.get("GRPCRoute") or []) and have.serves("GRPCRoute", "v1alpha2"):
            out.append(_finding("grpcroute-v1alpha2-status", "error", ["linkerd", "gateway-api"],
                                f"{where}: GRPCRoute v1alpha2 has no status subresource (gateway-api #3411), so "
                                f"{L.name}, which writes v1alpha2 route status, cannot report GRPCRoute status"))
            linkerd_error = True
        sup = L.entry.get("supported") or {}
        if not linkerd_error and have.version is not None and sup:
            lo, hi = parse_semver(sup["min"], ""), parse_semver(sup["max"], "")
            if not lo <= have.version <= hi:
                extra = ""
                if have.version > hi and parse_semver(L.entry["version"], "") < (2, 20, 0) and have.version >= (1, 3, 0):
                    extra = (": routes using newer fields (the CORS filter of Gateway API >= 1.3) broke Linkerd's "
                             "control plane until edge-26.4.4 (linkerd2 #14846, #15118)")
                out.append(_finding("linkerd-range", "warning", ["linkerd", "gateway-api"],
                                    f"{L.name} supports Gateway API {sup['min']} to {sup['max']}"
                                    + (f" ({sup['recommended']} recommended)" if sup.get("recommended") else "")
                                    + f"; the cluster has {have.label()}" + extra,
                                    source=L.entry.get("supported_source")))
    if T is not None:
        if "HTTPRoute" in have.served and not have.serves("HTTPRoute", "v1"):
            out.append(_finding("traefik-range", "error", ["traefik", "gateway-api", *comps_from],
                                f"Traefik {traefik} reads gateway.networking.k8s.io/v1; in {where}, HTTPRoute is served as "
                                f"{', '.join(have.served['HTTPRoute'])} only", kind="HTTPRoute", source=T["source"]))
        elif "GRPCRoute" in have.served and not have.serves("GRPCRoute", "v1"):
            out.append(_finding("grpcroute-v1-not-served", "warning", ["traefik", "gateway-api"],
                                f"Traefik {traefik} reads GRPCRoute v1; in {where}, GRPCRoute is served as "
                                f"{', '.join(have.served['GRPCRoute'])}: Traefik ignores every GRPCRoute",
                                source=T["source"]))
        if T is not None and have.version is not None and "HTTPRoute" in have.served \
                and have.serves("HTTPRoute", "v1"):
            tv = parse_semver(T["gateway_api"], "")
            if tv[:2] != have.version[:2] and "traefik" not in comps_from:
                older = have.version < tv
                out.append(_finding("traefik-range", "warning", ["traefik", "gateway-api"],
                                    f"Traefik {traefik} implements Gateway API {T['gateway_api']}; the cluster has "
                                    f"{have.label()}: " + ("kinds or versions it watches may be missing" if older
                                                           else "fields newer than its release are ignored"),
                                    source=T["source"]))
    if P is not None:
        for rule in data("argo-rollouts-plugin")["rules"]:
            if P < parse_semver(rule["from"], ""):
                continue
            for kind, ver in (rule.get("needs") or {}).items():
                if kind == "GRPCRoute":
                    if "GRPCRoute" in have.served and not have.serves(kind, ver):
                        out.append(_finding("grpcroute-v1-not-served", "warning",
                                            ["argo-rollouts-plugin", "gateway-api"],
                                            f"Argo Rollouts plugin {plugin} updates GRPCRoutes as {ver}; in {where}, GRPCRoute "
                                            f"is served as {', '.join(have.served[kind])}: GRPCRoute canaries fail",
                                            source=rule["source"]))
                elif kind in have.served and not have.serves(kind, ver):
                    out.append(_finding("plugin-min", "error", ["argo-rollouts-plugin", "gateway-api"],
                                        f"Argo Rollouts plugin {plugin} uses {kind} {ver}; in {where}, {kind} is served as "
                                        f"{', '.join(have.served[kind])}", source=rule["source"], kind=kind))
            if rule.get("min_gateway_api") and have.version is not None \
                    and have.version < parse_semver(rule["min_gateway_api"], ""):
                out.append(_finding("plugin-min", "error", ["argo-rollouts-plugin", "gateway-api"],
                                    f"Argo Rollouts plugin {plugin} needs Gateway API >= {rule['min_gateway_api']} "
                                    f"({rule['text'].rstrip('.')}); the cluster has {have.label()}",
                                    source=rule["source"]))
    # dedupe (a rule may repeat a finding)
    seen, uniq = set(), []
    for f in out:
        if (f.check, f.message) not in seen:
            seen.add((f.check, f.message))
            uniq.append(f)
    return uniq


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def frame(findings: list[Finding]):
    """The findings as a pandas DataFrame (severity, components, kind, message, fix, source)."""
    import pandas as pd
    rows = [{**f.to_dict(), "components": ", ".join(f.components)} for f in findings]
    return pd.DataFrame(rows, columns=["severity", "components", "kind", "message", "fix", "source"])


def text_table(findings: list[Finding]) -> str:
    """A plain-text rendering for terminals (one block per finding)."""
    if not findings:
        return "no findings: the versions fit together"
    blocks = []
    for f in findings:
        blocks.append(f"{f.severity.upper():<7} [{', '.join(f.components)}] {f.kind}\n"
                      f"  {f.message}\n  fix:    {f.fix}\n  source: {f.source}")
    return "\n\n".join(blocks)


def matrix():
    """Linkerd releases and the Gateway API (a pandas DataFrame): what each reads, which CRDs
    its chart installs by default, the supported range — from ``data/compat/linkerd.yaml``."""
    import pandas as pd
    rows = []
    for r in data("linkerd")["releases"]:
        c = r.get("crds") or {}
        by = c.get("installed_by_default") or {}
        rows.append({"linkerd": r["version"], "edge": r.get("edge") or "",
                     "HTTPRoute": ", ".join((r.get("reads") or {}).get("HTTPRoute", [])),
                     "GRPCRoute": ", ".join((r.get("reads") or {}).get("GRPCRoute", [])) or "-",
                     "supported Gateway API": f"{r['supported']['min']} - {r['supported']['max']}",
                     "bundled CRDs": f"{c.get('bundle_version')} {c.get('channel')}",
                     "installs them": "yes" if by.get("helm") is True and by.get("cli") is True else
                     ("Helm only" if by.get("helm") is True else "no"),
                     "source": r["source"]})
    return pd.DataFrame(rows)


def channels(version: str = "v1.6.1"):
    """Kinds and served API versions of each channel of a Gateway API release (a DataFrame)."""
    import pandas as pd
    rel = gateway_api_release(version)
    kinds = sorted(set(rel["served"]["standard"]) | set(rel["served"]["experimental"]))
    rows = [{"kind": k, "standard": ", ".join(rel["served"]["standard"].get(k, [])) or "-",
             "experimental": ", ".join(rel["served"]["experimental"].get(k, [])) or "-"} for k in kinds]
    return pd.DataFrame(rows)


def history(kind: str = "GRPCRoute"):
    """Which API versions of ``kind`` each Gateway API release serves, per channel (a
    DataFrame, one row per release): how a kind graduates, and when versions disappear."""
    import pandas as pd
    rows = []
    for r in data("gateway-api")["releases"]:
        rows.append({"release": r["version"],
                     "standard": ", ".join(r["served"].get("standard", {}).get(kind, [])) or "-",
                     "experimental": ", ".join(r["served"].get("experimental", {}).get(kind, [])) or "-"})
    return pd.DataFrame(rows).set_index("release")
