"""Validation speed: objects validated per second for 1,000 HTTPRoutes.

Prints the rate and, as a baseline measured in the same process, the ratio to plain
``yaml.safe_load`` of the same documents (so the number means something on any machine).
Target (issue 2): at least 1,000 objects/s on a 2-core machine.
"""
from __future__ import annotations

import time

import yaml

import gwlib

ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: route-{i}, namespace: team-{ns}}}
spec:
  parentRefs: [{{name: edge, namespace: infra, sectionName: https}}]
  hostnames: ["app{i}.example.com", "*.svc{i}.example.com"]
  rules:
  - matches:
    - path: {{type: PathPrefix, value: /api/v{i}}}
      headers: [{{name: X-Env, value: canary}}]
    - path: {{type: Exact, value: /health}}
      method: GET
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {{set: [{{name: X-Route, value: r{i}}}], remove: [X-Debug]}}
    backendRefs:
    - {{name: app-{i}, port: 8080, weight: 90}}
    - {{name: app-{i}-canary, port: 8080, weight: 10}}
  - matches: [{{path: {{type: PathPrefix, value: /old}}}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /new}}, statusCode: 301}}
"""


def main(n: int = 1000) -> None:
    text = "---\n".join(ROUTE.format(i=i, ns=i % 7) for i in range(n))
    t0 = time.perf_counter()
    list(yaml.safe_load_all(text))
    t_yaml = time.perf_counter() - t0
    t0 = time.perf_counter()
    problems = gwlib.validate(text)
    t_val = time.perf_counter() - t0
    assert not problems, problems[:3]
    print(f"validate: {n} HTTPRoutes in {t_val:.3f} s = {n / t_val:,.0f} objects/s "
          f"(target >= 1,000/s); {t_val / t_yaml:.2f}x the time of yaml.safe_load alone")


if __name__ == "__main__":
    main()
